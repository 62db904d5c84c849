"""Generate SCALE-Sim 3.0's reports for a fixed set of layers: the reference our systolic model must match.

Run it with a Python that has SCALE-Sim (it does not import mlc_lab; SCALE-Sim 3.0 needs numpy < 2.4):

    python3.11 -m venv .scalesim-venv
    .scalesim-venv/bin/pip install numpy==2.3.5 scalesim==3.0.0
    .scalesim-venv/bin/python tools/scalesim_reference.py            # writes mlc_lab/sim/data/scalesim_reference.json

Each case is one layer on one array with one dataflow, run through SCALE-Sim's Python API
(`scalesim(save_disk_space=True, ...)`, CALC bandwidth mode, big SRAMs so no stall comes from the
memory model). We store its COMPUTE_REPORT numbers and its wall time, so tests and benchmarks
compare against SCALE-Sim without installing it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

#: Small GEMMs (M, N, K): ifmap M x K times filter K x N, SCALE-Sim's convention.
GEMMS = [
    ("gemm_tiny", 3, 2, 5),  # smaller than every array
    ("gemm_square", 16, 16, 16),
    ("gemm_tall", 40, 12, 9),
    ("gemm_wide", 7, 33, 20),
    ("gemm_ragged", 23, 19, 31),
]
#: Small valid (unpadded) convolutions (H, W, KH, KW, C, F, stride), SCALE-Sim's topology columns.
CONVS = [
    ("conv_3x3", 8, 8, 3, 3, 4, 8, 1),
    ("conv_stride2", 11, 9, 3, 3, 3, 6, 2),
    ("conv_1x1", 6, 6, 1, 1, 16, 5, 1),
    ("conv_5x5_s3", 14, 14, 5, 5, 2, 12, 3),
    ("conv_ceil", 10, 8, 3, 3, 2, 4, 2),  # (H - KH) not divisible by the stride: SCALE-Sim rounds the output up
]
#: Array shapes (rows, cols): square, non-square both ways, and ones larger than some layers.
ARRAYS = [(4, 4), (8, 8), (8, 4), (4, 16), (32, 32)]
DATAFLOWS = ["os", "ws", "is"]

#: The ResNet-18-like model of the zoo (width 32, 64x64 input) as PyTorch defines its convs:
#: (name, H, W, KH, KW, C, F, stride, padding); the fc layer is a GEMM.
RESNET18_CONVS = [
    ("conv1", 64, 64, 7, 7, 3, 32, 2, 3),
    *[(f"layer1.{b}.conv{i}", 16, 16, 3, 3, 32, 32, 1, 1) for b in (0, 1) for i in (1, 2)],
    ("layer2.0.conv1", 16, 16, 3, 3, 32, 64, 2, 1),
    ("layer2.0.conv2", 8, 8, 3, 3, 64, 64, 1, 1),
    ("layer2.0.downsample", 16, 16, 1, 1, 32, 64, 2, 0),
    ("layer2.1.conv1", 8, 8, 3, 3, 64, 64, 1, 1),
    ("layer2.1.conv2", 8, 8, 3, 3, 64, 64, 1, 1),
    ("layer3.0.conv1", 8, 8, 3, 3, 64, 128, 2, 1),
    ("layer3.0.conv2", 4, 4, 3, 3, 128, 128, 1, 1),
    ("layer3.0.downsample", 8, 8, 1, 1, 64, 128, 2, 0),
    ("layer3.1.conv1", 4, 4, 3, 3, 128, 128, 1, 1),
    ("layer3.1.conv2", 4, 4, 3, 3, 128, 128, 1, 1),
    ("layer4.0.conv1", 4, 4, 3, 3, 128, 256, 2, 1),
    ("layer4.0.conv2", 2, 2, 3, 3, 256, 256, 1, 1),
    ("layer4.0.downsample", 4, 4, 1, 1, 128, 256, 2, 0),
    ("layer4.1.conv1", 2, 2, 3, 3, 256, 256, 1, 1),
    ("layer4.1.conv2", 2, 2, 3, 3, 256, 256, 1, 1),
]


def as_valid_conv(name: str, h: int, w: int, kh: int, kw: int, c: int, f: int, stride: int, pad: int) -> tuple:
    """The same layer as a valid conv for SCALE-Sim: the padded input, trimmed to the rows PyTorch reads.

    PyTorch's output size is floor((H + 2p - KH) / S) + 1; SCALE-Sim's is ceil((H' - KH + S) / S). With
    H' = (OH - 1) * S + KH (the padded input without the rows no window reaches) the two agree.
    """
    oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
    return (name, (oh - 1) * stride + kh, (ow - 1) * stride + kw, kh, kw, c, f, stride)


RESNET18_GEMMS = [("fc", 1, 10, 256)]
RESNET18_ARRAY = (32, 32)

CONFIG = """[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = 4096
FilterSramSzkB = 4096
OfmapSramSzkB = 4096
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = 10
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""

LAYOUT_HEADER = "Layer name," + ",".join(f"f{i}" for i in range(20)) + ",\n"


def run_case(workdir: Path, kind: str, layer: tuple, rows: int, cols: int, dataflow: str) -> dict:
    """Run SCALE-Sim on one layer and return its COMPUTE_REPORT row plus the wall time."""
    from scalesim.scale_sim import scalesim

    name = layer[0]
    run_name = f"{name}_{rows}x{cols}_{dataflow}".replace(".", "_")
    config = workdir / f"{run_name}.cfg"
    topo = workdir / f"{run_name}_topo.csv"
    layout = workdir / f"{run_name}_layout.csv"
    config.write_text(CONFIG.format(run_name=run_name, rows=rows, cols=cols, dataflow=dataflow))
    if kind == "gemm":
        topo.write_text("Layer, M, N, K,\n" + ",".join(str(x) for x in layer) + ",\n")
    else:
        header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
        topo.write_text(header + ",".join(str(x) for x in layer) + ",\n")
    layout.write_text(LAYOUT_HEADER + name + "," + ",".join(["1"] * 20) + ",\n")

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        sim = scalesim(
            save_disk_space=True,
            verbose=False,
            config=str(config),
            topology=str(topo),
            layout=str(layout),
            input_type_gemm=(kind == "gemm"),
        )
        sim.run_scale(top_path=str(workdir))
    wall = time.perf_counter() - start

    with open(workdir / run_name / "COMPUTE_REPORT.csv") as f:
        row = [x.strip() for x in next(r for i, r in enumerate(csv.reader(f)) if i == 1)]
    return {
        "name": name,
        "kind": kind,
        "layer": dict(zip(("M", "N", "K"), layer[1:]))
        if kind == "gemm"
        else dict(zip(("H", "W", "KH", "KW", "C", "F", "stride"), layer[1:])),
        "array": [rows, cols],
        "dataflow": dataflow,
        "total_cycles_incl_prefetch": int(row[1]),
        "compute_cycles": int(row[2]),
        "stall_cycles": int(row[3]),
        "overall_util_pct": float(row[4]),
        "mapping_efficiency_pct": float(row[5]),
        "compute_util_pct": float(row[6]),
        "wall_s": round(wall, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default_out = Path(__file__).parents[1] / "mlc_lab" / "sim" / "data" / "scalesim_reference.json"
    parser.add_argument("--out", default=str(default_out))
    parser.add_argument("--quick", action="store_true", help="only the first GEMM and conv on one array")
    args = parser.parse_args()
    from importlib.metadata import version

    import numpy

    cases = []
    validation = [("gemm", g) for g in GEMMS] + [("conv", c) for c in CONVS]
    arrays = ARRAYS
    if args.quick:
        validation, arrays = [validation[0], validation[len(GEMMS)]], ARRAYS[:1]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for kind, layer in validation:
            for rows, cols in arrays:
                for df in DATAFLOWS:
                    case = run_case(workdir, kind, layer, rows, cols, df)
                    case["set"] = "validation"
                    cases.append(case)
                    print(f"{case['name']:<14} {rows}x{cols} {df}: {case['compute_cycles']} cycles, {case['wall_s']} s")
        resnet = [("conv", as_valid_conv(*c)) for c in RESNET18_CONVS] + [("gemm", g) for g in RESNET18_GEMMS]
        if args.quick:
            resnet = []
        for kind, layer in resnet:
            for df in DATAFLOWS:
                case = run_case(workdir, kind, layer, *RESNET18_ARRAY, df)
                case["set"] = "resnet18"
                cases.append(case)
                print(f"{case['name']:<20} {RESNET18_ARRAY} {df}: {case['compute_cycles']} cycles, {case['wall_s']} s")
    out = {
        "generator": "tools/scalesim_reference.py",
        "scalesim_version": version("scalesim"),
        "numpy_version": numpy.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "notes": "SCALE-Sim Python API, save_disk_space=True, CALC bandwidth mode, 4 MiB SRAMs; "
        "compute_cycles is COMPUTE_REPORT's 'Total Cycles'; convs are valid (pre-padded) convolutions.",
        "cases": cases,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
