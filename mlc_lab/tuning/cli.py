"""`mlc-lab tune`: tune one kernel from the command line, optionally logging to a resumable database.

    mlc-lab tune --op matmul --shape 512,512,512 --trials 64 --json
    mlc-lab tune --op conv2d --shape 1,64,56,56,64,3 --layout NHWC --db conv.jsonl --print-schedule

Shapes: matmul/dense M,N,K; conv2d N,C,H,W,O,K (a stride-1 'same' KxK convolution).
"""

from __future__ import annotations

import argparse
import json
import re
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="auto-tune one kernel (matmul, dense, conv2d) on this CPU")
    p.add_argument("--op", choices=["matmul", "dense", "conv2d"], required=True)
    p.add_argument("--shape", required=True, type=_dims, help="matmul/dense: M,N,K; conv2d: N,C,H,W,O,K")
    p.add_argument("--layout", default="NCHW", help="conv2d data layout: NCHW, NHWC or NCHW<b>c (NCHW16c, ...)")
    p.add_argument("--trials", type=_bounded("trials", 1, MAX_TRIALS), default=64)
    p.add_argument("--strategy", default="model", help="random, grid, annealing, model, model-linear")
    p.add_argument("--db", help="JSON-lines tuning log to append to and resume from")
    p.add_argument("--seed", type=_bounded("seed", 0, 2**63 - 1), default=0)
    p.add_argument("--baseline", action="store_true", help="also time the naive (unscheduled) kernel")
    p.add_argument("--print-schedule", action="store_true", help="print the best kernel as TVMScript")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run, usage_error=p.error)


#: Stated limits of `mlc-lab tune`: a dimension of --shape, and --trials. Within them, the kernel's
#: tensors must also fit in free memory (checked before anything is allocated).
MAX_DIM = 2**20
MAX_TRIALS = 100_000
_CONV_LAYOUT = re.compile(r"NCHW|NHWC|NCHW([1-9][0-9]*)c")


def _bounded(name: str, lo: int, hi: int):
    """An argparse type: an integer in [lo, hi]; otherwise argparse's error naming the option and value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{name} must be in [{lo:,}, {hi:,}], got {value:,}")
        return value

    parse.__name__ = name
    return parse


def _dims(text: str) -> list[int]:
    """--shape: comma-separated positive integers, each at most MAX_DIM."""
    dims = []
    for part in text.split(","):
        try:
            d = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"dimension {part.strip()!r} of {text!r} is not an integer") from None
        if not 1 <= d <= MAX_DIM:
            raise argparse.ArgumentTypeError(f"dimension {d:,} of {text!r} must be in [1, {MAX_DIM:,}]")
        dims.append(d)
    return dims


def make_task(op: str, shape: str | list[int], layout: str = "NCHW", target: str = ""):
    """The task `mlc-lab tune` tunes; a ValueError naming --shape or --layout when they do not fit `op`.

    target: the task's target key; empty = this machine's (which imports TVM to ask)."""
    from mlc_lab.tuning.task import conv2d_task, dense_task, matmul_task

    try:
        dims = _dims(shape) if isinstance(shape, str) else list(shape)
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"argument --shape: {e}") from None
    text = ",".join(map(str, dims))
    if op in ("matmul", "dense"):
        if len(dims) != 3:
            raise ValueError(f"argument --shape: {op} takes M,N,K (3 numbers), got {text!r}")
        return (matmul_task if op == "matmul" else dense_task)(*dims, target=target)
    if len(dims) != 6:
        raise ValueError(f"argument --shape: conv2d takes N,C,H,W,O,K (6 numbers), got {text!r}")
    blocked = _CONV_LAYOUT.fullmatch(layout)
    if blocked is None:
        raise ValueError(f"argument --layout: conv2d takes NCHW, NHWC or NCHW<b>c (e.g. NCHW16c), got {layout!r}")
    n, c, h, w, o, k = dims
    block = int(blocked.group(1) or 1)
    if c % block or o % block:
        raise ValueError(f"argument --layout: {layout} needs C={c} and O={o} to be multiples of {block}")
    return conv2d_task(n, (h, w), c, o, k, layout, target=target)


def check_task_fits(task) -> None:
    """Refuse a kernel whose tensors would not fit in memory: tuning holds them twice (the interpreter's
    reference run and the measured TVM buffers)."""
    from mlc_lab.ir.memory import check_fits, tensor_bytes

    nbytes = 2 * sum(tensor_bytes(x.type) for x in (*task.node.inputs, task.node))
    check_fits(nbytes, f"argument --shape: tuning {task.name}")


def run(args: argparse.Namespace) -> int:
    from mlc_lab.tuning.measure import MeasuredCost, scheduled_func
    from mlc_lab.tuning.tuner import tune

    try:  # sizes first, on a task with a placeholder target: refusing a shape should not wait for TVM's import
        check_task_fits(make_task(args.op, args.shape, args.layout, target="size check"))
    except ValueError as e:  # MemoryLimitError included
        args.usage_error(str(e))
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
