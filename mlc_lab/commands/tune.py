"""`mlc-lab tune`: tune one kernel from the command line, optionally logging to a resumable database;
`mlc-lab tune-model`: tune a zoo model's kernels within a time budget, into the user's tuning cache.

    mlc-lab tune --op matmul --shape 512,512,512 --trials 64 --json
    mlc-lab tune --op conv2d --shape 1,64,56,56,64,3 --layout NHWC --db conv.jsonl --print-schedule
    mlc-lab tune --op matmul --shape 256,256,256 --rpc-tracker 10.0.0.5:9190 --rpc-key rpi4 \
        --target '{"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "cortex-a72", "num-cores": 4}' \
        --cross-compiler aarch64-linux-gnu-g++ --db rpi4.jsonl
    mlc-lab tune-model resnet18 --budget 5m

Shapes: matmul/dense M,N,K; conv2d N,C,H,W,O,K (a stride-1 'same' KxK convolution).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

#: The kernels `mlc-lab tune` builds a task for, and the --shape each takes (see `make_task`).
SHAPE_ARGS = {"matmul": "M,N,K", "dense": "M,N,K", "conv2d": "N,C,H,W,O,K"}


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="auto-tune one kernel (matmul, dense, conv2d) on this CPU")
    p.add_argument("--op", choices=list(SHAPE_ARGS), required=True)
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
    p.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on the RPC servers of this TVM tracker")
    p.add_argument("--rpc-key", metavar="KEY", help="the device key the RPC servers registered with")
    p.add_argument("--target", type=_target_json, help="the remote target as JSON (default: this CPU)")
    p.add_argument("--cross-compiler", help="links the remote kernels (e.g. aarch64-linux-gnu-g++)")
    p.set_defaults(func=run, usage_error=p.error)

    m = subparsers.add_parser("tune-model", help="tune a zoo model's kernels within a time budget, into the cache")
    m.add_argument("model", help="a zoo model: mlp, small_cnn, resnet18, transformer_block, ...")
    m.add_argument("--budget", type=_budget, default="5m", help="time to spend: 90s, 5m, 1h (default 5m)")
    m.add_argument("--strategy", default="model", help="random, grid, annealing, model, model-linear")
    m.add_argument("--json", action="store_true", help="print the result as one JSON object")
    m.add_argument("--no-progress", action="store_true")
    m.set_defaults(func=run_model, usage_error=m.error)


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


def _budget(text: str) -> float:
    """--budget: a duration ('90s', '5m', '1h'); argparse's error naming the value otherwise."""
    from mlc_lab.tuning.budget import BadBudget, parse_budget

    try:
        return parse_budget(text)
    except BadBudget as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _target_json(text: str) -> dict:
    """--target: a TVM target as a JSON object with "kind": "llvm"."""
    try:
        target = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e.msg}): {text!r}") from None
    if not isinstance(target, dict) or target.get("kind") != "llvm":
        raise argparse.ArgumentTypeError(f'a CPU target is a JSON object with "kind": "llvm", got {text!r}')
    return target


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

    if op not in SHAPE_ARGS:
        raise ValueError(f"argument --op: {op!r} is not one of {', '.join(SHAPE_ARGS)}")
    try:
        dims = _dims(shape) if isinstance(shape, str) else list(shape)
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"argument --shape: {e}") from None
    text = ",".join(map(str, dims))
    if SHAPE_ARGS[op] == "M,N,K":
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


def run(args: argparse.Namespace) -> int:
    from mlc_lab.tuning.measure import MeasuredCost, scheduled_func
    from mlc_lab.tuning.tuner import tune

    try:  # sizes first (Task checks memory), with a placeholder target: a refusal should not wait for TVM
        make_task(args.op, args.shape, args.layout, target="size check")
    except ValueError as e:  # MemoryLimitError included
        args.usage_error(str(e) if str(e).startswith("argument") else f"argument --shape: {e}")
    quiet = args.no_progress or args.json or not sys.stderr.isatty()
    servers = None
    if args.rpc_tracker or args.rpc_key:
        task, result, servers = _tune_remote(args, quiet)
    else:
        if args.target is not None:
            args.usage_error("argument --target: a target other than this CPU needs --rpc-tracker and --rpc-key")
        task = make_task(args.op, args.shape, args.layout)
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
    if servers is not None:
        summary["target"] = task.target
        summary["rpc_servers"] = dict(servers)  # server address -> trials it measured
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


def _tune_remote(args: argparse.Namespace, quiet: bool):
    """`mlc-lab tune --rpc-tracker ... --rpc-key ...`: build here, measure on the tracker's servers."""
    from mlc_lab.tuning.rpc import RemoteMeasureError, parse_tracker, remote_key, remote_target, tune_remote

    if not (args.rpc_tracker and args.rpc_key):
        args.usage_error("--rpc-tracker and --rpc-key go together (the tracker, and the key its servers use)")
    try:
        parse_tracker(args.rpc_tracker)
        target = remote_target(args.target)
    except ValueError as e:
        args.usage_error(str(e))
    task = make_task(args.op, args.shape, args.layout, target=remote_key(target))
    try:
        remote = tune_remote(
            task,
            args.trials,
            tracker=args.rpc_tracker,
            key=args.rpc_key,
            target=target,
            db=args.db,
            strategy=args.strategy,
            seed=args.seed,
            progress=not quiet,
            cross_compiler=args.cross_compiler,
        )
    except RemoteMeasureError as e:
        print(f"mlc-lab tune: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    return task, remote.result, remote.servers


def run_model(args: argparse.Namespace) -> int:
    """`mlc-lab tune-model MODEL --budget 5m`: every tunable kernel `mlc_lab.compile` builds for the model."""
    from mlc_lab import zoo
    from mlc_lab.tuning.cache import TuningCacheError, tuning_cache
    from mlc_lab.tuning.driver import tune_model

    if args.model not in zoo.names():
        args.usage_error(f"argument model: unknown zoo model {args.model!r}; models: {', '.join(zoo.names())}")
    model = zoo.load(args.model)
    quiet = args.no_progress or args.json or not sys.stderr.isatty()
    try:
        db = tuning_cache()
        results = tune_model(
            model.module, model.example_inputs, db, strategy=args.strategy, progress=not quiet, budget=args.budget
        )
    except TuningCacheError as e:
        print(f"mlc-lab tune-model: {e}", file=sys.stderr)
        return 1
    kernels = [
        {"key": key[:80], "trials": len(r.trials), "measured_trials": r.measured, "best_gflops": r.best_gflops}
        for key, r in results.items()
    ]
    summary = {"model": args.model, "budget_s": args.budget, "cache": str(db.path), "kernels": kernels}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.model}: {len(kernels)} kernels tuned for {args.budget:.0f} s into {db.path}")
        for k in kernels:
            print(f"  {k['trials']:>5} trials ({k['measured_trials']} new), best {k['best_gflops']:.1f} GFLOP/s")
    return 0
