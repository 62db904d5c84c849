"""Is a refactor free? Two git revisions of mlc_lab side by side in one run: time ratios and output differences.

    python benchmarks/refactor_parity.py d9857af                  # d9857af (before) vs HEAD (after)
    python benchmarks/refactor_parity.py d9857af --after .        # vs the working tree as it is
    python benchmarks/refactor_parity.py d9857af --after /tmp/patched_checkout
    python benchmarks/refactor_parity.py d9857af --models mlp --backends interpreter --rounds 3

Each revision is checked out into its own `git worktree` (removed at the end) and imported in its own
long-lived worker process (1 thread for every runtime). The parent sends both workers the same commands,
alternating which goes first, so a load spike from the rest of the machine hits both sides alike; it
reports medians. Measured per zoo model:

- `compile` on `interpreter` and `tvm` (and any `--backends`): `mlc_lab.compile(module, inputs, backend)`,
  import + passes + code generation, as `benchmarks/compare_all.py` does it;
- the fusion benchmark's variants (`benchmarks/fusion.py`): the zoo graph unfused, fused
  (FoldBatchNorm + ElementwiseFusionPass) and fused in NHWC, each built with `codegen.tvm.build`, with the
  IR's kernel count and intermediate traffic (which must match exactly);
- run time: median per-call seconds over interleaved rounds.

Both workers run on the same input arrays (written once, read by both); the table gives each time's
after/before ratio and the largest absolute difference between the two revisions' outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MARK = "@@parity "  # the worker's replies start with this; anything else a library prints is ignored
THREAD_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS")}
FUSION_MODELS = ("resnet18", "transformer_block")  # the models benchmarks/fusion.py measures


# -- the worker: runs inside one revision's tree; uses only API both revisions have ---------------------------
def _fusion_graph(model: Any, variant: str) -> Any:
    from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, PassManager
    from mlc_lab.passes.memory import MemoryLayoutOptimizer

    graph = model.graph()
    if variant == "unfused":
        return graph
    layout = [MemoryLayoutOptimizer(target_layout="NHWC")] if variant == "fused+NHWC" else []
    return PassManager([FoldBatchNorm(), *layout, ElementwiseFusionPass()]).apply(graph)


class Worker:
    """Compiles and times what the parent asks for, keeping each compiled model for the timing rounds."""

    def __init__(self, inputs_dir: Path) -> None:
        from mlc_lab.bench import pin_threads

        pin_threads(1)
        self.inputs_dir = inputs_dir
        self.compiled: dict[str, Any] = {}
        self.inputs: dict[str, list[Any]] = {}

    def model_inputs(self, name: str) -> list[Any]:
        """The arrays every worker runs on: written by whichever worker asks first, read by the other."""
        import numpy as np

        if name not in self.inputs:
            path = self.inputs_dir / f"{name}.npz"
            if not path.exists():
                from mlc_lab import zoo

                arrays = zoo.load(name).numpy_inputs()
                tmp = path.with_suffix(".tmp.npz")
                np.savez(tmp, *arrays)
                tmp.replace(path)
            with np.load(path) as data:
                self.inputs[name] = [data[f"arr_{i}"] for i in range(len(data.files))]
        return self.inputs[name]

    def compile(self, model: str, what: str) -> dict[str, Any]:
        """`what` is a backend name for mlc_lab.compile, or `fusion:<variant>` for a codegen.tvm.build."""
        import gc

        import mlc_lab
        from mlc_lab import zoo

        self.compiled.pop(f"{model}/{what}", None)
        gc.collect()
        loaded = zoo.load(model)
        reply: dict[str, Any] = {}
        start = time.perf_counter()
        if what.startswith("fusion:"):
            from mlc_lab.codegen.tvm import build
            from mlc_lab.metrics import graph_metrics

            graph = _fusion_graph(loaded, what.split(":", 1)[1])
            fn = build(graph)
            seconds = time.perf_counter() - start
            m = graph_metrics(graph)
            reply.update(kernels=m.kernels, traffic=m.intermediate_traffic_bytes)
        else:
            fn = mlc_lab.compile(loaded.module, loaded.example_inputs, backend=what)
            seconds = time.perf_counter() - start
        self.compiled[f"{model}/{what}"] = fn
        return {"seconds": seconds, **reply}

    def run(self, model: str, what: str, calls: int, save: str | None) -> dict[str, Any]:
        """Mean and fastest per-call seconds of `calls` calls (the parent takes the median and the minimum
        over rounds: on a loaded machine a call shorter than a time slice is either preempted or not, so
        the fastest call is the steadier measure of its own cost, the median the fairer one of contention)."""
        import numpy as np

        fn, inputs = self.compiled[f"{model}/{what}"], self.model_inputs(model)
        outputs = fn(*inputs)
        if save:
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            np.savez(save, *[np.asarray(o) for o in outputs])
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            fn(*inputs)
            times.append(time.perf_counter() - start)
        return {"seconds": sum(times) / calls, "best": min(times)}


def worker_main(inputs_dir: str) -> None:
    import mlc_lab

    worker = Worker(Path(inputs_dir))
    print(MARK + json.dumps({"ready": mlc_lab.__file__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = getattr(worker, request.pop("task"))(**request)
        except Exception as e:  # the parent reports it with the revision it came from
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(MARK + json.dumps(reply), flush=True)


# -- the parent: worktrees, two workers, interleaved rounds, the table ----------------------------------------
def is_tree(rev: str) -> bool:
    """'.' (the working tree) or a folder holding a checkout, used as it is (a patch under trial)."""
    return rev == "." or (Path(rev) / "mlc_lab" / "__init__.py").is_file()


class Side:
    """One revision: its worktree and its worker process."""

    def __init__(self, label: str, rev: str, workdir: Path, inputs_dir: Path) -> None:
        self.label, self.rev = label, rev
        self.made_tree = not is_tree(rev)
        if self.made_tree:
            self.tree = workdir / f"wt_{label}"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(self.tree), rev],
                           check=True, capture_output=True, text=True)
        else:
            self.tree = REPO if rev == "." else Path(rev).resolve()
        self.log = open(workdir / f"{label}.log", "w")  # noqa: SIM115 (closed in close())
        env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(self.tree)}
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(inputs_dir)],
            cwd=self.tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
        )
        where = self._reply()["ready"]
        if not Path(where).resolve().is_relative_to(self.tree.resolve()):
            raise RuntimeError(f"{label} ({rev}) imported mlc_lab from {where}, not from {self.tree}")

    def _reply(self) -> dict[str, Any]:
        for line in self.proc.stdout:
            if line.startswith(MARK):
                return json.loads(line[len(MARK):])
        raise RuntimeError(f"{self.label} ({self.rev}) worker exited; its log: {self.log.name}")

    def ask(self, **request: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        if "error" in reply:
            raise RuntimeError(f"{self.label} ({self.rev}) {request}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.log.close()
        if self.made_tree:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(self.tree)], check=False)


def interleaved(sides: list[Side], rounds: int, **request: Any) -> dict[str, list[dict[str, Any]]]:
    """Ask every side the same thing `rounds` times, reversing the order each round."""
    samples: dict[str, list[dict[str, Any]]] = {s.label: [] for s in sides}
    for r in range(rounds):
        for side in sides if r % 2 == 0 else sides[::-1]:
            samples[side.label].append(side.ask(**request))
    return samples


def max_difference(a: Path, b: Path) -> float:
    import numpy as np

    with np.load(a) as x, np.load(b) as y:
        if len(x.files) != len(y.files):
            return float("inf")
        diffs = []
        for k in x.files:
            if x[k].shape != y[k].shape or x[k].dtype != y[k].dtype:
                return float("inf")
            diffs.append(float(np.abs(x[k].astype(np.float64) - y[k].astype(np.float64)).max(initial=0.0)))
        return max(diffs, default=0.0)


def measure(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    inputs_dir = workdir / "inputs"
    inputs_dir.mkdir()
    sides: list[Side] = []
    try:
        sides.append(Side("before", args.before, workdir, inputs_dir))
        sides.append(Side("after", args.after, workdir, inputs_dir))
        for s in sides:  # one-time imports (torch.export, TVM) are paid here, not by the first model timed
            for backend in args.backends:
                s.ask(task="compile", model="mlp", what=backend)
        jobs = [(m, b) for m in args.models for b in args.backends]
        if not args.no_fusion:
            jobs += [(m, f"fusion:{v}") for m in args.models if m in FUSION_MODELS
                     for v in ("unfused", "fused", "fused+NHWC") if v != "fused+NHWC" or m == "resnet18"]
        rows = []
        for model, what in jobs:
            print(f"{model} {what}: compiling x{args.compile_rounds} and timing x{args.rounds} ...", flush=True)
            compiled = interleaved(sides, args.compile_rounds, task="compile", model=model, what=what)
            saved = {s.label: workdir / f"{s.label}_{model}_{what.replace(':', '_')}.npz" for s in sides}
            for s in sides:  # outputs on the shared inputs, and a warm-up call
                s.ask(task="run", model=model, what=what, calls=1, save=str(saved[s.label]))
            runs = interleaved(sides, args.rounds, task="run", model=model, what=what, calls=args.calls, save=None)
            row = {"model": model, "what": what, "diff": max_difference(saved["before"], saved["after"])}
            for label in ("before", "after"):
                row[f"compile_{label}"] = statistics.median(c["seconds"] for c in compiled[label])
                row[f"run_{label}"] = statistics.median(r["seconds"] for r in runs[label])
                row[f"best_{label}"] = min(r["best"] for r in runs[label])
                if "kernels" in compiled[label][-1]:
                    row[f"ir_{label}"] = (compiled[label][-1]["kernels"], compiled[label][-1]["traffic"])
            rows.append(row)
            print("  " + format_row(row), flush=True)
        return rows
    finally:
        for s in sides:
            s.close()


def format_row(row: dict[str, Any]) -> str:
    cb, ca, rb, ra, bb, ba = (row[k] for k in ("compile_before", "compile_after", "run_before", "run_after",
                                               "best_before", "best_after"))
    ir = ""
    if "ir_before" in row:
        same = "same" if row["ir_before"] == row["ir_after"] else f"DIFFER {row['ir_before']} -> {row['ir_after']}"
        ir = f"  kernels/traffic {row['ir_after'][0]}/{row['ir_after'][1] / 1024:.0f}KiB {same}"
    return (f"{row['model']:<18}{row['what']:<20}{cb:>9.3f}{ca:>9.3f}{ca / cb:>7.2f}x"
            f"{rb * 1e3:>10.3f}{ra * 1e3:>10.3f}{ra / rb:>7.2f}x{bb * 1e3:>10.3f}{ba * 1e3:>10.3f}{ba / bb:>7.2f}x"
            f"{row['diff']:>11.1e}{ir}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="git revision (or a checkout's folder) measured as 'before'")
    p.add_argument("--after", default="HEAD", help="git revision, '.' (the working tree) or a checkout's folder")
    p.add_argument("--models", nargs="+", default=["mlp", "small_cnn", "resnet18", "transformer_block"])
    p.add_argument("--backends", nargs="+", default=["interpreter", "tvm"], help="mlc_lab.compile backends")
    p.add_argument("--no-fusion", action="store_true", help="skip the fusion benchmark's variants")
    p.add_argument("--compile-rounds", type=int, default=3)
    p.add_argument("--rounds", type=int, default=7, help="timing rounds per side")
    p.add_argument("--calls", type=int, default=5, help="calls per round")
    p.add_argument("--tolerance", type=float, default=1e-6, help="largest output difference accepted")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (worker logs, outputs)")
    args = p.parse_args(argv)
    for label, rev in (("before", args.before), ("after", args.after)):
        if not is_tree(rev):
            out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True)
            if out.returncode:
                p.error(f"{label}: {rev!r} is not a git revision of {REPO}")
            print(f"{label}: {rev} = {out.stdout.strip()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    workdir = Path(tempfile.mkdtemp(prefix="refactor_parity_"))
    start = time.perf_counter()
    try:
        rows = measure(args, workdir)
    finally:
        if args.keep:
            print(f"scratch folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.perf_counter() - start:.0f} s in all; times are medians, ratios are after/before (< 1: faster)")
    print("compile: median seconds from the zoo model to a callable; run: median milliseconds per call;"
          " best: the fastest single call")
    print(f"{'model':<18}{'compiled as':<20}{'compile':>9}{'':>9}{'ratio':>8}{'run':>10}{'':>10}{'ratio':>8}"
          f"{'best':>10}{'':>10}{'ratio':>8}{'max|diff|':>11}")
    print(f"{'':<38}{'before':>9}{'after':>9}{'':>8}{'before':>10}{'after':>10}{'':>8}{'before':>10}{'after':>10}")
    for row in rows:
        print(format_row(row))
    worst = max((r["diff"] for r in rows), default=0.0)
    ir_same = all(r.get("ir_before") == r.get("ir_after") for r in rows)
    ok = worst <= args.tolerance and ir_same
    print(f"\nlargest output difference {worst:.1e} (tolerance {args.tolerance:g}); "
          f"fusion IR metrics {'identical' if ir_same else 'DIFFER'}: {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker_main(sys.argv[2])
    else:
        sys.exit(main())
