"""`mlc-lab coverage` on a small subset: real verdicts against the models' own frameworks, and the CLI.

Fast on purpose: ONNX operator cases (stored inputs/outputs), one tiny HF ResNet on the interpreter, and
TVM's importer on one operator case. The whole suites run from the command line (`mlc-lab coverage`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlc_lab.cli import main
from mlc_lab.commands.coverage import TVM_IMPORTER, compare, coverage
from mlc_lab.interop import model_suites


def test_compare_names_what_differs() -> None:
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    assert compare([x + 1e-6], [x]) is None
    assert "wrong result" in compare([x + 0.1], [x])
    assert "shape" in compare([x.reshape(3, 2)], [x])
    assert "dtype float64" in compare([x.astype(np.float64)], [x])
    assert "2 outputs" in compare([x, x], [x])
    ints = np.arange(4, dtype=np.int64)
    assert compare([ints], [ints]) is None
    assert "1 of 4 values differ" in compare([ints + (ints == 3)], [ints])
    assert "NaN" in compare([np.array([np.nan], np.float32)], [np.array([1.0], np.float32)])
    nan_where_expected = np.array([np.nan, -np.inf, 2.0], np.float32)  # sqrt(-1), log(0): NaN/Inf in both
    assert compare([nan_where_expected.copy()], [nan_where_expected]) is None


def test_operator_cases_pass_and_unsupported_ops_are_listed() -> None:
    report = coverage(
        "onnx-ops", ["test_operator_addmm", "test_gradient_of_add"], ["interpreter"], tvm_importer=False,
        progress=False,
    )  # fmt: skip
    assert report.rows["test_operator_addmm"]["interpreter"].status == "pass"
    refused = report.rows["test_gradient_of_add"]["interpreter"]
    assert refused.status == "unsupported" and "Gradient" in refused.detail
    assert report.counts("interpreter") == {"pass": 1, "unsupported": 1}


def test_a_wrong_result_is_a_fail_naming_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference is perturbed: the same compiled model must now be reported as a wrong result."""
    real = model_suites.BUILDERS["onnx-ops"]

    def perturbed(name: str) -> model_suites.SuiteModel:
        sm = real(name)
        sm.reference = [r + 1.0 for r in sm.reference]
        return sm

    monkeypatch.setitem(model_suites.BUILDERS, "onnx-ops", perturbed)
    report = coverage("onnx-ops", ["test_operator_addmm"], ["interpreter"], tvm_importer=False, progress=False)
    cell = report.rows["test_operator_addmm"]["interpreter"]
    assert cell.status == "fail" and "wrong result" in cell.detail


def test_hf_resnet_on_the_interpreter_equals_pytorch() -> None:
    report = coverage("hf", ["resnet"], ["interpreter"], tvm_importer=False, progress=False)
    cell = report.rows["resnet"]["interpreter"]
    assert cell.status == "pass", cell.detail


def test_tvm_importer_column_runs_tvm_on_the_same_case() -> None:
    report = coverage("onnx-ops", ["test_operator_addmm"], [], tvm_importer=True, progress=False)
    assert report.columns == [TVM_IMPORTER]
    assert report.rows["test_operator_addmm"][TVM_IMPORTER].status == "pass"


def test_cli_prints_the_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["coverage", "--suite", "onnx-ops", "--models", "test_gradient_of_add", "--backends", "interpreter"]
    assert main([*args, "--no-tvm-importer", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test_gradient_of_add" in out and "unsupported" in out and "0/1 pass" in out
    assert main([*args, "--no-tvm-importer", "--no-progress", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["rows"]["test_gradient_of_add"]["interpreter"]["status"] == "unsupported"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--backends", "interpreter,nope"], "unknown backend 'nope'"),
        (["--models", "not_a_case"], "'not_a_case' is not in suite onnx-ops"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["coverage", "--suite", "onnx-ops", "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err
