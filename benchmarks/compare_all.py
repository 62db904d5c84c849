"""Every zoo model on every mlc_lab backend and on PyTorch, side by side in one run: a ratio table and a plot.

The measuring is `mlc_lab.comparison` (chapter 9 calls the same code); this file is its command line.

    python benchmarks/compare_all.py                              # all models, 1 thread each
    python benchmarks/compare_all.py --models small_cnn --rounds 15 --plot /tmp/compare.png
    python benchmarks/compare_all.py --tuning-db tuning.jsonl    # adds "tvm tuned" (needs the auto-tuner)

Wall-clock contenders (median per-call time over interleaved rounds, `mlc_lab.bench`, threads pinned):
PyTorch eager (oneDNN/MKL kernels), torch.compile with inductor, a NumPy baseline (our interpreter: one
NumPy/OpenBLAS kernel per op), mlc_lab on TVM (default schedules; tuned with --tuning-db) and on MLIR/IREE.
Every mlc_lab call takes and returns torch tensors, so conversion costs are included.

Under the tables, per model: how many contraction kernels the default schedule register-tiled, and
(with --tuning-db) how many kernels the log had a record for on this machine (a record applies only
to its own CPU and thread count).

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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)  # before the heavy imports below, so every runtime sees it
    from mlc_lab import zoo
    from mlc_lab.comparison import compare_model, format_tables, log_origin, machine_summary, plot_comparison

    print(f"this machine: {machine_summary()}")
    if args.tuning_db:
        print(f"tuning log {args.tuning_db}: measured on {log_origin(args.tuning_db)}")
    results = []
    for name in args.models or zoo.names():
        print(f"{name}: compiling and timing ...", flush=True)
        results.append(compare_model(name, args.tuning_db, not args.no_inductor, args.rounds, args.calls))
    print("\n" + format_tables(results))  # ends with each model's schedule coverage (default and log)
    if args.plot:
        plot_comparison(results).savefig(args.plot, dpi=120)
        print(f"\nplot saved to {args.plot}")
    worst = max(e for r in results for e in r.errors.values())
    print(f"\nworst max abs error over all models and backends: {worst:.1e} ({'OK' if worst <= 1e-4 else 'FAIL'})")
    return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
