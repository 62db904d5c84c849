"""MLIR-compiled zoo models (emit -> IREE llvm-cpu) against PyTorch eager, batch 1, one thread each.

    python benchmarks/mlir.py                      # small_cnn and transformer_block, plus resnet18 compile time
    python benchmarks/mlir.py --models mlp resnet18 --rounds 30

Both sides run in the same process, interleaved round by round (so load on the machine hits both
alike); each round times `--calls` calls and we report the median per-call time over rounds.
Threads are pinned: torch uses 1 intra-op thread, IREE runs on the calling thread ("local-sync").
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mlc_lab import zoo  # noqa: E402
from mlc_lab.bench import interleaved_medians  # noqa: E402
from mlc_lab.codegen.mlir import emit  # noqa: E402
from mlc_lab.codegen.mlir.execute import compile_iree  # noqa: E402
from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm  # noqa: E402


def bench_model(name: str, rounds: int, calls: int, optimize: bool) -> dict[str, float]:
    model = zoo.load(name)
    graph = model.graph()
    if optimize:
        graph = ElementwiseFusionPass().apply(FoldBatchNorm().apply(graph))
    run = compile_iree(emit(graph))
    inputs = model.numpy_inputs()
    ours = run(*inputs)[0]
    err_torch = float(np.abs(ours - model.torch_outputs()[0]).max())
    err_interp = float(np.abs(ours - model.graph()(*inputs)[0]).max())
    module = model.module.eval()

    def eager() -> object:
        with torch.no_grad():
            return module(*model.example_inputs)

    times = interleaved_medians({"eager": eager, "mlir": lambda: run(*inputs)}, rounds, calls)
    return {**times, "ratio": times["mlir"] / times["eager"], "err_torch": err_torch, "err_interp": err_interp}


def compile_time(name: str) -> tuple[float, float]:
    """(emit seconds, IREE compile seconds) for one model, from its imported graph."""
    graph = zoo.load(name).graph()
    start = time.perf_counter()
    module = emit(graph)
    emitted = time.perf_counter()
    compile_iree(module)
    return emitted - start, time.perf_counter() - emitted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["small_cnn", "transformer_block"])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--optimize", action="store_true", help="FoldBatchNorm + ElementwiseFusionPass first")
    parser.add_argument("--compile-model", default="resnet18")
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"{'model':20s} {'eager us':>9s} {'mlir us':>9s} {'mlir/eager':>10s} {'max err vs torch':>17s}")
    for name in args.models:
        r = bench_model(name, args.rounds, args.calls, args.optimize)
        print(f"{name:20s} {r['eager'] * 1e6:9.1f} {r['mlir'] * 1e6:9.1f} {r['ratio']:10.2f} {r['err_torch']:17.2e}")
    emit_s, compile_s = compile_time(args.compile_model)
    total = emit_s + compile_s
    print(f"{args.compile_model}: emit {emit_s:.2f} s + IREE compile {compile_s:.2f} s = {total:.2f} s (target < 60 s)")


if __name__ == "__main__":
    main()
