"""`mlc-lab tune`: tune one kernel from the command line, optionally logging to a resumable database.

    mlc-lab tune --op matmul --shape 512,512,512 --trials 64 --json
    mlc-lab tune --op conv2d --shape 1,64,56,56,64,3 --layout NHWC --db conv.jsonl --print-schedule

Shapes: matmul/dense M,N,K; conv2d N,C,H,W,O,K (a stride-1 'same' KxK convolution).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="auto-tune one kernel (matmul, dense, conv2d) on this CPU")
    p.add_argument("--op", choices=["matmul", "dense", "conv2d"], required=True)
    p.add_argument("--shape", required=True, help="matmul/dense: M,N,K; conv2d: N,C,H,W,O,K")
    p.add_argument("--layout", default="NCHW", help="conv2d data layout: NCHW, NHWC, NCHW16c, ...")
    p.add_argument("--trials", type=int, default=64)
    p.add_argument("--strategy", default="model", help="random, grid, annealing, model, model-linear")
    p.add_argument("--db", help="JSON-lines tuning log to append to and resume from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", action="store_true", help="also time the naive (unscheduled) kernel")
    p.add_argument("--print-schedule", action="store_true", help="print the best kernel as TVMScript")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def make_task(op: str, shape: str, layout: str = "NCHW"):
    from mlc_lab.tuning.task import conv2d_task, dense_task, matmul_task

    dims = [int(x) for x in shape.split(",")]
    if op in ("matmul", "dense"):
        if len(dims) != 3:
            raise SystemExit(f"--shape for {op} is M,N,K (3 numbers), got {shape!r}")
        return (matmul_task if op == "matmul" else dense_task)(*dims)
    if len(dims) != 6:
        raise SystemExit(f"--shape for conv2d is N,C,H,W,O,K (6 numbers), got {shape!r}")
    n, c, h, w, o, k = dims
    return conv2d_task(n, (h, w), c, o, k, layout)


def run(args: argparse.Namespace) -> int:
    from mlc_lab.tuning.measure import MeasuredCost, scheduled_func
    from mlc_lab.tuning.tuner import tune

    task = make_task(args.op, args.shape, args.layout)
    quiet = args.no_progress or args.json or not sys.stderr.isatty()
    result = tune(task, args.trials, strategy=args.strategy, db=args.db, seed=args.seed, progress=not quiet)
    summary = {
        "task": task.name,
        "key": task.key,
        "strategy": args.strategy,
        "trials": len(result.trials),
        "measured_trials": result.measured,
        "resumed_trials": result.resumed,
        "invalid_records": len(result.invalid),  # log lines skipped (not used as best, nor as model data)
        "invalid_reasons": [str(p) for p in result.invalid[:5]],
        "failed_trials": len(result.failures),
        "failure_reasons": sorted({t.error for t in result.failures})[:5],
        "best_time_s": result.best_cost if result.best else None,
        "best_gflops": result.best_gflops,
        "tuning_wall_s": result.tuning_wall_s,
        "mean_trial_s": result.mean_trial_s,
        "best_config": result.best_config,
        "db": args.db,
    }
    if args.baseline:
        naive = MeasuredCost(task, repeat=1, min_repeat_ms=0)(None)
        summary["naive_time_s"] = naive.cost
        summary["naive_gflops"] = task.flops / naive.cost / 1e9
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for name, value in summary.items():
            print(f"{name:>16}: {value}")
    if args.print_schedule and result.best is not None:
        func, _ = scheduled_func(task, result.best_config)
        print(func.script())
    return 0 if result.best is not None else 1
