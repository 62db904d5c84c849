"""Every zoo model on every mlc_lab backend and on PyTorch, side by side in one run: a ratio table and a plot.

    python benchmarks/compare_all.py                              # all models, 1 thread each
    python benchmarks/compare_all.py --models small_cnn --rounds 15 --plot /tmp/compare.png
    python benchmarks/compare_all.py --tuning-db tuning.jsonl    # adds "tvm tuned" (needs the auto-tuner)

Wall-clock contenders (median per-call time over interleaved rounds, `mlc_lab.bench`, threads pinned):
PyTorch eager (oneDNN/MKL kernels), torch.compile with inductor, a NumPy baseline (our interpreter: one
NumPy/OpenBLAS kernel per op), mlc_lab on TVM (default schedules; tuned with --tuning-db) and on MLIR/IREE.
Every mlc_lab call takes and returns torch tensors, so conversion costs are included.

The accelerator backends (systolic, cerebras, dataflow) are simulators: their outputs are checked like
everyone's, and their *simulated* time (cycles / clock) is printed in a separate table, never mixed with
wall time. Every output is compared with PyTorch eager (max abs error, fp32; the target is <= 1e-4).
"""

from __future__ import annotations

import os
import sys

# Thread counts must be in the environment before NumPy loads OpenBLAS (importing mlc_lab imports
# NumPy), or the NumPy baseline keeps every core while the others are pinned.
_THREADS = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv[:-1] else "1"
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = _THREADS

import argparse  # noqa: E402

from mlc_lab.bench import pin_threads  # noqa: E402

WALL = ["eager", "inductor", "numpy", "tvm", "tvm tuned", "mlir"]
SIMULATED = ["systolic", "cerebras", "dataflow"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None, help="zoo models (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--calls", type=int, default=5, help="calls per contender per round")
    p.add_argument("--tuning-db", default=None, help="auto-tuner database for the 'tvm tuned' column")
    p.add_argument("--no-inductor", action="store_true", help="skip torch.compile (its compile is slow)")
    p.add_argument("--plot", default="compare_all.png", help="where to save the plot ('' to skip)")
    return p.parse_args(argv)


def contenders(m, tuning_db: str | None, inductor: bool) -> dict:
    """name -> a callable taking the model's torch inputs; compiled once, before any timing."""
    import torch

    import mlc_lab

    fns = {"eager": m.module}
    if inductor:
        torch._dynamo.reset()
        fns["inductor"] = torch.compile(m.module)
    fns["numpy"] = mlc_lab.compile(m.module, m.example_inputs, backend="interpreter")
    fns["tvm"] = mlc_lab.compile(m.module, m.example_inputs, backend="tvm")
    if tuning_db:
        fns["tvm tuned"] = mlc_lab.compile(m.module, m.example_inputs, backend="tvm", tuning_db=tuning_db)
    fns["mlir"] = mlc_lab.compile(m.module, m.example_inputs, backend="mlir")
    for name in SIMULATED:
        fns[name] = mlc_lab.compile(m.module, m.example_inputs, backend=name)
    return fns


def max_error(fn, m) -> float:
    import numpy as np
    import torch

    with torch.no_grad():
        out = fn(*m.example_inputs)
    return float(np.abs(out.numpy() - m.torch_outputs()[0]).max())


def run_model(name: str, args: argparse.Namespace) -> dict:
    import torch

    from mlc_lab import zoo
    from mlc_lab.bench import interleaved_medians

    m = zoo.load(name)
    fns = contenders(m, args.tuning_db, not args.no_inductor)
    errors = {k: max_error(fn, m) for k, fn in fns.items()}
    timed = {k: (lambda fn=fn: fn(*m.example_inputs)) for k, fn in fns.items() if k not in SIMULATED}
    with torch.no_grad():
        seconds = interleaved_medians(timed, rounds=args.rounds, calls=args.calls)
    simulated = {k: fns[k].report.time_s for k in SIMULATED}
    return {"errors": errors, "seconds": seconds, "simulated": simulated}


def print_tables(results: dict) -> None:
    cols = [c for c in WALL if any(c in r["seconds"] for r in results.values())]
    print("\nWall time per call, ms (median of interleaved rounds); ratio = time / eager, lower is faster")
    print(f"{'model':<18}" + "".join(f"{c:>12}" for c in cols) + f"{'tvm/eager':>11}{'tvm/ind.':>10}")
    for model, r in results.items():
        s = r["seconds"]
        row = "".join(f"{s[c] * 1e3:>12.3f}" if c in s else f"{'-':>12}" for c in cols)
        ind = f"{s['tvm'] / s['inductor']:>10.2f}" if "inductor" in s else f"{'-':>10}"
        print(f"{model:<18}{row}{s['tvm'] / s['eager']:>11.2f}{ind}")
    print("\nRatio to PyTorch eager")
    print(f"{'model':<18}" + "".join(f"{c:>12}" for c in cols))
    for model, r in results.items():
        s = r["seconds"]
        print(f"{model:<18}" + "".join(f"{s[c] / s['eager']:>12.2f}" if c in s else f"{'-':>12}" for c in cols))
    print("\nSimulated accelerators (simulated time per run, us; not wall time)")
    print(f"{'model':<18}" + "".join(f"{c:>12}" for c in SIMULATED))
    for model, r in results.items():
        print(f"{model:<18}" + "".join(f"{r['simulated'][c] * 1e6:>12.2f}" for c in SIMULATED))
    print("\nMax abs error vs PyTorch eager (target <= 1e-4)")
    names = list(next(iter(results.values()))["errors"])
    print(f"{'model':<18}" + "".join(f"{c:>11}" for c in names))
    for model, r in results.items():
        print(f"{model:<18}" + "".join(f"{r['errors'][c]:>11.1e}" for c in names))


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [c for c in WALL if c != "eager" and any(c in r["seconds"] for r in results.values())]
    models = list(results)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(models), 4))
    width = 0.8 / len(cols)
    for i, c in enumerate(cols):
        ratios = [results[m]["seconds"].get(c, np.nan) / results[m]["seconds"]["eager"] for m in models]
        ax.bar(np.arange(len(models)) + i * width, ratios, width, label=c)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="eager = 1")
    ax.set_xticks(np.arange(len(models)) + width * (len(cols) - 1) / 2, models)
    ax.set_yscale("log")
    ax.set_ylabel("time / PyTorch eager (log; lower is faster)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"\nplot saved to {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)  # before the heavy imports below, so every runtime sees it
    from mlc_lab import zoo

    results = {}
    for name in args.models or zoo.names():
        print(f"{name}: compiling and timing ...", flush=True)
        results[name] = run_model(name, args)
    print_tables(results)
    if args.plot:
        plot(results, args.plot)
    worst = max(e for r in results.values() for e in r["errors"].values())
    print(f"\nworst max abs error over all models and backends: {worst:.1e} ({'OK' if worst <= 1e-4 else 'FAIL'})")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
