"""mlc_lab.compile: every backend x every zoo model equals PyTorch; tensor types in and out; clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mlc_lab
from mlc_lab import zoo
from mlc_lab.api import BACKENDS

TOL = 1e-4


@pytest.fixture(scope="module", params=zoo.names())
def model(request) -> zoo.ZooModel:
    return zoo.load(request.param)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_every_backend_equals_pytorch(model: zoo.ZooModel, backend: str) -> None:
    compiled = mlc_lab.compile(model.module, model.example_inputs, backend=backend)
    out = compiled(*model.example_inputs)
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), model.torch_outputs()[0], atol=TOL, rtol=0)


@pytest.fixture(scope="module")
def cnn_tvm() -> tuple[zoo.ZooModel, mlc_lab.CompiledModel]:
    m = zoo.load("small_cnn")
    return m, mlc_lab.compile(m.module, m.example_inputs, backend="tvm")


def test_numpy_in_numpy_out(cnn_tvm) -> None:
    m, compiled = cnn_tvm
    out = compiled(*m.numpy_inputs())
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, m.torch_outputs()[0], atol=TOL, rtol=0)


def test_graph_in_and_pass_presets() -> None:
    m = zoo.load("mlp")
    for passes in ("none", None, [mlc_lab.passes.FoldConstants()]):
        compiled = mlc_lab.compile(m.graph(), backend="interpreter", passes=passes)
        np.testing.assert_allclose(compiled(*m.numpy_inputs()), m.torch_outputs()[0], atol=TOL, rtol=0)


def test_simulated_backend_keeps_its_report() -> None:
    m = zoo.load("small_cnn")
    compiled = mlc_lab.compile(m.module, m.example_inputs, backend="systolic", rows=8, cols=8)
    compiled(*m.example_inputs)
    assert compiled.report.cycles > 0 and compiled.report.time_s > 0


def test_unknown_backend_lists_the_backends() -> None:
    m = zoo.load("mlp")
    with pytest.raises(ValueError, match="unknown backend 'tpu'.*tvm, mlir"):
        mlc_lab.compile(m.module, m.example_inputs, backend="tpu")


def test_unknown_preset_and_bad_pass() -> None:
    m = zoo.load("mlp")
    with pytest.raises(ValueError, match="unknown pass preset 'fast'"):
        mlc_lab.compile(m.graph(), backend="interpreter", passes="fast")
    with pytest.raises(TypeError, match="passes="):
        mlc_lab.compile(m.graph(), backend="interpreter", passes=["FoldConstants"])


def test_wrong_inputs_name_the_input(cnn_tvm) -> None:
    _, compiled = cnn_tvm
    with pytest.raises(ValueError, match="takes 1 inputs"):
        compiled(torch.zeros(1, 3, 16, 16), torch.zeros(1))
    with pytest.raises(ValueError, match=r"input %x: expected shape \[1, 3, 16, 16\], got \[1, 3, 8, 8\]"):
        compiled(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="expected dtype float32, got float64"):
        compiled(np.zeros((1, 3, 16, 16)))


def test_needs_example_inputs_and_a_model() -> None:
    with pytest.raises(ValueError, match="needs example_inputs"):
        mlc_lab.compile(zoo.load("mlp").module)
    with pytest.raises(TypeError, match="cannot compile a builtins.int"):
        mlc_lab.compile(3, ())


def test_tuning_db_without_tuner_is_a_clear_error(tmp_path, monkeypatch) -> None:
    pytest.importorskip("tvm")
    import mlc_lab.tuning

    monkeypatch.delattr(mlc_lab.tuning, "schedule_from_db")  # as if the tuner were not installed
    m = zoo.load("mlp")
    with pytest.raises(RuntimeError, match="no auto-tuner"):
        mlc_lab.compile(m.module, m.example_inputs, backend="tvm", tuning_db=tmp_path / "db.jsonl")
    with pytest.raises(ValueError, match="tvm backend only"):
        mlc_lab.compile(m.module, m.example_inputs, backend="mlir", tuning_db=tmp_path / "db.jsonl")


def test_tvm_outputs_are_not_overwritten_by_the_next_call(cnn_tvm) -> None:
    """The TVM path hands outputs over without a copy: a later call must not change an earlier result."""
    m, compiled = cnn_tvm
    first = compiled(*m.example_inputs)
    kept = first.clone()
    compiled(torch.randn_like(m.example_inputs[0]))
    torch.testing.assert_close(first, kept, rtol=0, atol=0)
