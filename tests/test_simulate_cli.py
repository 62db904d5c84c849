"""`mlc-lab simulate`: JSON with the report's fields, SCALE-Sim's numbers for single layers, clear errors."""

from __future__ import annotations

import json

import pytest

from mlc_lab.cli import build_parser, main
from mlc_lab.sim.systolic import load_scalesim_reference

REFERENCE = load_scalesim_reference()


def run_json(capsys, *argv: str) -> dict:
    assert main(["simulate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def find_case(name: str, array: list[int], dataflow: str) -> dict:
    return next(
        c for c in REFERENCE["cases"] if c["name"] == name and c["array"] == array and c["dataflow"] == dataflow
    )


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
def test_systolic_gemm_json_equals_scalesim(capsys, dataflow):
    case = find_case("gemm_ragged", [8, 4], dataflow)  # M=23, N=19, K=31
    out = run_json(capsys, "systolic", "--gemm", "23,19,31", "--array", "8x4", "--dataflow", dataflow)
    assert out["compute_cycles"] == case["compute_cycles"]
    assert out["utilization"] * 100 == pytest.approx(case["overall_util_pct"])
    assert out["mapping_efficiency"] * 100 == pytest.approx(case["mapping_efficiency_pct"])
    assert out["layers"][0]["m"] == 23 and out["dataflow"] == dataflow and out["rows"] == 8


def test_systolic_conv_json_equals_scalesim(capsys):
    case = find_case("conv_stride2", [4, 16], "ws")  # 11x9 input, 3x3, 3 -> 6 channels, stride 2
    out = run_json(capsys, "systolic", "--conv", "11,9,3,3,3,6,2", "--array", "4x16", "--dataflow", "ws")
    assert out["compute_cycles"] == case["compute_cycles"]
    assert {"utilization", "mapping_efficiency", "cycles", "time_s", "offchip_bytes"} <= set(out)


def test_systolic_model_with_preset(capsys):
    out = run_json(capsys, "systolic", "--model", "mlp", "--preset", "tpu_v1")
    assert out["backend"] == "tpu_v1" and out["rows"] == 256 and len(out["layers"]) == 8
    assert set(out["wall_s"]) == {"compile", "execute"}


def test_wafer_resnet18_on_400k_cores(capsys):
    out = run_json(capsys, "wafer", "--model", "resnet18", "--cores", "400000")
    assert out["cores"] == 400_000 and out["compute_cycles"] == out["interval_cycles"]
    assert len(out["layers"]) == 21 and out["bottleneck"]
    assert out["wall_s"]["compile"] + out["wall_s"]["execute"] < 10


def test_dataflow_text_output(capsys):
    assert main(["simulate", "dataflow", "--model", "mlp", "--grid", "4x4"]) == 0
    text = capsys.readouterr().out
    assert "II per configuration" in text and "linear.dense" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["systolic", "--gemm", "4,4"], "--gemm"),
        (["systolic", "--gemm", "4,4,4", "--dataflow", "xs"], "dataflow"),
        (["systolic", "--gemm", "4,4,4", "--array", "0x4"], "array rows"),
        (["systolic", "--conv", "8,8,3,3,1,1,0"], "STRIDE"),
        (["wafer", "--model", "resnet18", "--cores", "0"], "cores"),
        (["wafer", "--model", "nope"], "no zoo model"),
        (["dataflow", "--model", "mlp", "--grid", "axb"], "grid"),
    ],
)
def test_errors_exit_2_and_name_the_problem(capsys, argv, message):
    assert main(["simulate", *argv]) == 2
    assert message in capsys.readouterr().err


def test_simulate_is_listed_in_the_help():
    assert "simulate" in build_parser().format_help()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "systolic"])  # one of --gemm/--conv/--model is required
