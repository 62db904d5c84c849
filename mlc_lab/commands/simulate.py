"""`mlc-lab simulate {systolic,wafer,dataflow}`: quick accelerator experiments, JSON for scripts.

    mlc-lab simulate systolic --gemm 64,64,64 --array 8x8 --dataflow os --json
    mlc-lab simulate systolic --conv 56,56,3,3,64,64,1 --array 32x32 --dataflow ws
    mlc-lab simulate systolic --model resnet18 --preset tpu_v1
    mlc-lab simulate wafer --model resnet18 --cores 400000 --json
    mlc-lab simulate dataflow --model mlp --grid 8x8

The JSON is the report's `to_dict()` (the same fields as `report.compute_cycles`, `report.layers`, ...)
plus the wall time of the simulation. Exit status 0 on success, 2 on a bad configuration or mapping.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `simulate` and its three backends to the `mlc-lab` command."""
    sim = subparsers.add_parser(
        "simulate",
        help="run a layer or a zoo model on an accelerator model (systolic, wafer, dataflow)",
        description="Cost a GEMM, a convolution or a zoo model on one of the accelerator models; --json for scripts.",
    )
    backends = sim.add_subparsers(dest="backend", metavar="BACKEND", required=True)

    sys_p = backends.add_parser("systolic", help="TPU-like systolic array (SCALE-Sim-compatible compute cycles)")
    what = sys_p.add_mutually_exclusive_group(required=True)
    gemm = _dims("--gemm", ("M", "N", "K"))
    conv = _dims("--conv", ("H", "W", "KH", "KW", "C", "F", "STRIDE"))
    what.add_argument("--gemm", metavar="M,N,K", type=gemm, help="one GEMM: (M x K) @ (K x N)")
    what.add_argument("--conv", metavar="H,W,KH,KW,C,F,STRIDE", type=conv, help="one valid (unpadded) convolution")
    what.add_argument("--model", metavar="NAME", help="a zoo model (resnet18, mlp, small_cnn, transformer_block)")
    sys_p.add_argument("--preset", choices=["tpu_v1"], help="start from a preset (other flags override it)")
    sys_p.add_argument("--array", metavar="RxC", type=_grid("array", "MAX_ARRAY_SIDE"), help="rows x columns (32x32)")
    sys_p.add_argument("--dataflow", help="os, ws or is (default ws)")
    sys_p.add_argument("--clock-mhz", type=_quantity("clock_mhz"))
    sys_p.add_argument("--ifmap-sram-kb", type=_quantity("ifmap_sram_kb"))
    sys_p.add_argument("--filter-sram-kb", type=_quantity("filter_sram_kb"))
    sys_p.add_argument("--ofmap-sram-kb", type=_quantity("ofmap_sram_kb"))
    sys_p.add_argument("--dram-gbps", type=_quantity("dram_bandwidth_gbps"), dest="dram_bandwidth_gbps")
    sys_p.add_argument("--json", action="store_true", help="print the report as JSON")
    sys_p.set_defaults(func=run_systolic)

    wafer = backends.add_parser("wafer", help="Cerebras-like wafer-scale mesh of cores")
    wafer.add_argument("--model", required=True, metavar="NAME", help="a zoo model")
    wafer.add_argument("--preset", choices=["wse2", "wse3"], help="start from a preset (other flags override it)")
    wafer.add_argument("--cores", type=_count("cores", "MAX_CORES"))
    wafer.add_argument("--memory-per-core-kb", type=_quantity("memory_per_core_kb"))
    wafer.add_argument("--clock-ghz", type=_quantity("clock_ghz"))
    wafer.add_argument("--execution", help="pipelined (default) or weight_streaming")
    wafer.add_argument("--json", action="store_true", help="print the report as JSON")
    wafer.set_defaults(func=run_wafer)

    cgra = backends.add_parser("dataflow", help="CGRA-like grid of reconfigurable PEs")
    cgra.add_argument("--model", required=True, metavar="NAME", help="a zoo model")
    cgra.add_argument("--grid", metavar="RxC", type=_grid("grid", "MAX_GRID_SIDE"), help="PE rows x columns (8x8)")
    cgra.add_argument("--pe-memory-kb", type=_quantity("pe_memory_kb"))
    cgra.add_argument("--batch", type=_count("batch", "MAX_PER_UNIT"))
    cgra.add_argument("--json", action="store_true", help="print the report as JSON")
    cgra.set_defaults(func=run_dataflow)


# -- argparse types: the backends' own checks and stated limits (base.MAX_*), applied while parsing, so a
# bad value is argparse's error (exit status 2, "argument --cores: ...", the option and the value named).
# They import the backends only when called: registration stays cheap.
def _checked(check: Callable[[Any, str], Any], what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        from mlc_lab.backends.custom import base

        try:
            return check(base, text)
        except base.ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = what  # argparse names the type in some messages
    return convert


def _number(text: str) -> Any:
    """The text as an int or a float; left as text when it is neither (the check then names it)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _count(name: str, limit: str) -> Callable[[str], int]:
    return _checked(lambda base, text: base.positive_int(name, _number(text), getattr(base, limit)), "count")


def _quantity(name: str) -> Callable[[str], float]:
    return _checked(lambda base, text: base.positive_float(name, _number(text)), "quantity")


def _grid(name: str, limit: str) -> Callable[[str], tuple[int, int]]:
    return _checked(lambda base, text: base.parse_grid(name, text, getattr(base, limit)), "grid")


def _dims(flag: str, names: tuple[str, ...]) -> Callable[[str], list[int]]:
    """Comma-separated dimensions, each a positive integer up to base.MAX_LAYER_DIM."""

    def check(base: Any, text: str) -> list[int]:
        values = [_number(v.strip()) for v in text.split(",")]
        if len(values) != len(names):
            raise base.ConfigError(
                f"{flag} needs {len(names)} comma-separated integers ({','.join(names)}), got {text!r}"
            )
        return [base.positive_int(n, v, base.MAX_LAYER_DIM) for n, v in zip(names, values)]

    return _checked(check, "dims")


#: The brief's name for the same hook.
add_simulate_parser = register


def _options(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _emit(report: Any, args: argparse.Namespace, timing: dict[str, float]) -> None:
    if args.json:
        print(json.dumps({**report.to_dict(), "wall_s": timing}, indent=2))
    else:
        print(report)
        print("wall time: " + ", ".join(f"{k} {v:.3f} s" for k, v in timing.items()))


def _guarded(run):
    """Turn configuration and mapping errors into one readable line and exit status 2."""

    def wrapper(args: argparse.Namespace) -> int:
        from mlc_lab.backends.custom.base import ConfigError, MappingError

        try:
            return run(args)
        except (ConfigError, MappingError, ValueError) as e:
            print(f"mlc-lab simulate {args.backend}: error: {e}", file=sys.stderr)
            return 2

    wrapper.__name__ = run.__name__
    wrapper.__doc__ = run.__doc__
    return wrapper


def _model(name: str):
    from mlc_lab import zoo

    model = zoo.load(name)
    return model.graph(), model.numpy_inputs()


def _run_model(backend: Any, name: str) -> tuple[Any, dict[str, float]]:
    graph, inputs = _model(name)
    start = time.perf_counter()
    program = backend.compile(graph)
    compiled = time.perf_counter()
    _, report = backend.execute(program, inputs)
    done = time.perf_counter()
    return report, {"compile": compiled - start, "execute": done - compiled}


@_guarded
def run_systolic(args: argparse.Namespace) -> int:
    """`simulate systolic`: one GEMM, one convolution, or a whole zoo model."""
    from mlc_lab.backends.custom.systolic import SystolicArrayBackend

    options = _options(args, ("dataflow", "clock_mhz", "ifmap_sram_kb", "filter_sram_kb", "ofmap_sram_kb"))
    options.update(_options(args, ("dram_bandwidth_gbps",)))
    if args.array:
        options["rows"], options["cols"] = args.array
    backend = SystolicArrayBackend.tpu_v1(**options) if args.preset else SystolicArrayBackend(**options)
    start = time.perf_counter()
    if args.gemm:
        report = backend.simulate_gemm(*args.gemm)
    elif args.conv:
        report = backend.simulate_conv(*args.conv)
    else:
        report, timing = _run_model(backend, args.model)
        _emit(report, args, timing)
        return 0
    _emit(report, args, {"simulate": time.perf_counter() - start})
    return 0


@_guarded
def run_wafer(args: argparse.Namespace) -> int:
    """`simulate wafer`: a zoo model pipelined over a wafer of cores."""
    from mlc_lab.backends.custom.wafer import CerebrasLikeBackend

    options = _options(args, ("cores", "memory_per_core_kb", "clock_ghz", "execution"))
    make = {"wse2": CerebrasLikeBackend.wse2, "wse3": CerebrasLikeBackend.wse3}.get(args.preset, CerebrasLikeBackend)
    report, timing = _run_model(make(**options), args.model)
    _emit(report, args, timing)
    return 0


@_guarded
def run_dataflow(args: argparse.Namespace) -> int:
    """`simulate dataflow`: a zoo model mapped onto a CGRA-like PE grid."""
    from mlc_lab.backends.custom.dataflow import DataflowBackend

    options = _options(args, ("pe_memory_kb", "batch"))
    if args.grid:
        options["rows"], options["cols"] = args.grid
    report, timing = _run_model(DataflowBackend(**options), args.model)
    _emit(report, args, timing)
    return 0
