"""Real models timed: each Hugging Face architecture on mlc_lab's TVM and MLIR vs PyTorch eager and torch.compile.

    python benchmarks/real_models.py                                # the 7 tiny-config HF architectures
    python benchmarks/real_models.py --models gpt2 bert --rounds 5
    python benchmarks/real_models.py --tune 2m                      # "tvm tuned": 2 minutes of tuning per arch
    python benchmarks/real_models.py --tuning-db tuning.jsonl       # "tvm tuned" from your own records instead
    python benchmarks/real_models.py --no-tune --no-inductor        # skip tuning and torch.compile (quick)

The models are those of `mlc_lab.interop.model_suites` (tiny configs, random weights, nothing downloaded).
One thread for every runtime (`mlc_lab.bench.pin_threads`), contenders timed round-robin in one process
(`interleaved_medians`: a load burst hits all alike), median per-call seconds reported with the ratio to
eager. "tvm" is `mlc_lab.compile(..., backend="tvm")` with the schedules this machine has (default
templates; shipped or cached tuning records where one exists for this CPU: the `sched` column counts
kernels by schedule source). Every mlc_lab call takes and returns torch tensors (conversions included).
Each output is checked against eager (max abs error over the output's scale) before it is timed.

"tvm tuned" is "tvm" after a short tuning run of that architecture's kernels (`--tune`, default 60 s per
architecture, `mlc_lab.tuning.budget.tune_graph`) into a fresh database in a temporary folder (the
user's tuning cache is neither read nor written for it), or with the records of `--tuning-db`.
Where a mlc_lab contender is slower than eager, the table is followed by why, measured: the TVM
kernels' share of the call (each kernel timed inside the Relax VM through its instrument hook), the
biggest kernels, and what is left outside them (the VM, argument copies, tensor conversion).

Measured 2026-12-01 (AMD EPYC znver4, 2 cores shared with other jobs, load 5-10; `--tune 20s
--no-inductor --rounds 5`), ms per call, x eager: gpt2 eager 2.90, tvm 0.07x, tuned 0.05x, mlir 0.37x;
llama 5.11, 0.05x, 0.02x, 0.40x; bert 3.33, 0.54x, 0.03x, 0.06x; vit 2.75, 0.07x, 0.06x, 0.09x;
resnet 2.36, 0.08x, 0.05x, 0.16x; mobilenet_v2 5.67, 0.08x, 0.08x (17 of 30 kernels tuned in 20 s),
0.12x; convnext 1.84, 0.09x, 0.05x, 0.14x. Every mlc_lab contender was <= 1.0x eager on every
architecture in that run (tiny configs, a few ms of eager per call), so it printed no breakdown.
"""

from __future__ import annotations

import os
import sys

# Before NumPy loads OpenBLAS (importing mlc_lab imports NumPy): every runtime gets one thread.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import collections  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from mlc_lab.bench import interleaved_medians, pin_threads  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None, help="HF architectures (default: all)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=5, help="calls per contender per round")
    p.add_argument("--tune", default="60s", help="tuning budget per architecture for 'tvm tuned' (default 60s)")
    p.add_argument("--no-tune", action="store_true", help="no 'tvm tuned' column")
    p.add_argument("--tuning-db", default=None, help="take 'tvm tuned' from this database instead of tuning")
    p.add_argument("--no-inductor", action="store_true", help="skip torch.compile")
    p.add_argument("--no-mlir", action="store_true", help="skip the MLIR backend")
    return p.parse_args(argv)


def _flat(out) -> list[np.ndarray]:
    if hasattr(out, "values"):
        return [v.detach().numpy() if hasattr(v, "detach") else np.asarray(v) for v in out.values()]
    if isinstance(out, (list, tuple)):
        return [a for o in out for a in _flat(o)]
    return [out.detach().numpy() if hasattr(out, "detach") else np.asarray(out)]


def relative_error(got, want) -> float:
    """Largest |got - want| over the reference output's scale, over all outputs."""
    errors = []
    for g, w in zip(_flat(got), _flat(want), strict=True):
        errors.append(float(np.abs(g.astype(np.float64) - w).max()) / max(float(np.abs(w).max()), 1e-12))
    return max(errors)


def measure(name: str, args: argparse.Namespace) -> dict:
    """Compile every contender for one architecture, check its outputs, then time them interleaved."""
    import torch

    import mlc_lab
    from mlc_lab.interop.model_suites import hf_model

    sm = hf_model(name)
    model, inputs = sm.model, sm.example_inputs
    with torch.no_grad():
        eager_out = model(*inputs)
    contenders = {"eager": lambda: model(*inputs)}
    compile_s, errors, schedules, tvm_models = {}, {}, {}, {}
    builds = {"tvm": {"backend": "tvm"}}
    if args.tuning_db or not args.no_tune:
        builds["tvm tuned"] = {"backend": "tvm", "tuning_db": args.tuning_db}
    if not args.no_mlir:
        builds["mlir"] = {"backend": "mlir"}
    for label, options in builds.items():
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if label == "tvm tuned" and not args.tuning_db:
                    options = {**options, "tuning_db": tune_into_new_db(tvm_models["tvm"].optimized, args.tune, name)}
                compiled = mlc_lab.compile(model, inputs, **options)
            out = compiled(*inputs)
        except Exception as e:  # noqa: BLE001 - reported in the table, the other contenders still run
            errors[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        compile_s[label] = time.perf_counter() - start
        errors[label] = relative_error(out, eager_out)
        contenders[label] = lambda c=compiled: c(*inputs)
        if options["backend"] == "tvm":
            tvm_models[label] = compiled
            schedules[label] = ",".join(f"{k}:{v}" for k, v in sorted(compiled.schedule_coverage().items()) if v)
    if not args.no_inductor:
        start = time.perf_counter()
        try:
            inductor = torch.compile(model)
            with torch.no_grad():
                errors["torch.compile"] = relative_error(inductor(*inputs), eager_out)
            compile_s["torch.compile"] = time.perf_counter() - start
            contenders["torch.compile"] = lambda: inductor(*inputs)
        except Exception as e:  # noqa: BLE001
            errors["torch.compile"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    with torch.no_grad():
        times = interleaved_medians(contenders, rounds=args.rounds, calls=args.calls)
        why = {
            label: kernel_breakdown(compiled, inputs, times[label])
            for label, compiled in tvm_models.items()
            if label in times and times[label] > times["eager"]
        }
    return {
        "name": name,
        "times": times,
        "compile_s": compile_s,
        "errors": errors,
        "schedules": schedules,
        "why": why,
    }


def tune_into_new_db(graph, budget: str, name: str) -> str:
    """Tune `graph`'s kernels for `budget` into a new database file (not the user's cache); its path."""
    from mlc_lab.tuning.budget import parse_budget, tune_graph
    from mlc_lab.tuning.database import TuningDatabase

    path = os.path.join(tempfile.mkdtemp(prefix=f"real_models_{name}_"), "tuning.jsonl")
    start = time.perf_counter()
    tune_graph(graph, parse_budget(budget), db=TuningDatabase(path), progress=False)
    print(f"  {name}: tuned {budget} ({time.perf_counter() - start:.0f} s) into {path}", file=sys.stderr, flush=True)
    return path


def kernel_breakdown(compiled, inputs, call_s: float, calls: int = 21) -> dict:
    """Where a TVM call's time goes: each kernel timed inside the Relax VM (its instrument hook wraps
    every packed call), the median over `calls` runs per kernel (a load burst moves a mean); the rest of
    `call_s` is outside the kernels."""
    import tvm
    from tvm import relax

    graph = compiled.runner.compiled  # the codegen's CompiledGraph
    kernel_names = {k.name for k in graph.kernels.values()}
    vm = relax.VirtualMachine(graph.executable, tvm.cpu())
    runs: list[dict[str, float]] = []
    started: dict[str, float] = {}

    def instrument(func, name, before_run, ret_value, *args) -> int:
        if name in kernel_names:
            if before_run:
                started[name] = time.perf_counter()
            else:
                runs[-1][name] += time.perf_counter() - started[name]
        return 0  # tvm.runtime.InstrumentReturnKind.NO_SKIP

    arguments = graph._arguments([x.detach().numpy() for x in inputs])
    vm["main"](*arguments)  # warm-up, not instrumented
    vm.set_instrument(instrument)
    for _ in range(calls):
        runs.append(collections.defaultdict(float))
        vm["main"](*arguments)
    per_kernel = {name: float(np.median([run[name] for run in runs])) for name in runs[0]}
    in_kernels = float(np.median([sum(run.values()) for run in runs]))
    top = sorted(per_kernel.items(), key=lambda kv: -kv[1])[:3]
    return {"call_s": call_s, "kernels_s": in_kernels, "kernels": len(graph.kernels), "top": top}


def format_table(results: list[dict]) -> str:
    """Median ms per call, and each contender's time over eager's (< 1: faster than eager)."""
    labels = [c for c in ("tvm", "tvm tuned", "mlir", "torch.compile") if any(c in r["errors"] for r in results)]
    head = f"{'model':14}{'eager ms':>10}" + "".join(f"{c + ' ms':>18}{'x eager':>9}" for c in labels)
    lines = [head + "  max rel. error / TVM schedules"]
    for r in results:
        eager = r["times"]["eager"]
        row = f"{r['name']:14}{eager * 1e3:10.3f}"
        notes = []
        for c in labels:
            if c in r["times"]:
                row += f"{r['times'][c] * 1e3:18.3f}{r['times'][c] / eager:9.2f}"
                notes.append(f"{c} {r['errors'][c]:.1e}")
            else:
                row += f"{'failed':>18}{'':9}"
                notes.append(f"{c}: {r['errors'].get(c, 'not run')}")
        sched = "; ".join(f"{label} sched {kinds}" for label, kinds in r["schedules"].items())
        lines.append(row + "  " + "; ".join(notes) + (f"; {sched}" if sched else ""))
    return "\n".join(lines)


def format_why(results: list[dict]) -> str:
    """Per architecture and contender slower than eager: the measured kernel breakdown of one call."""
    lines = []
    for r in results:
        eager = r["times"]["eager"]
        for label, b in r["why"].items():
            outside = max(b["call_s"] - b["kernels_s"], 0.0)
            top = ", ".join(f"{k} {s * 1e3:.3f} ms" for k, s in b["top"])
            lines.append(
                f"{r['name']} {label}: {b['call_s'] / eager:.2f}x eager. {b['kernels']} kernel launches take "
                f"{b['kernels_s'] * 1e3:.3f} ms (eager's whole call: {eager * 1e3:.3f} ms), outside them "
                f"{outside * 1e3:.3f} ms; biggest: {top}"
            )
        if "mlir" in r["times"] and r["times"]["mlir"] > eager:
            lines.append(
                f"{r['name']} mlir: {r['times']['mlir'] / eager:.2f}x eager (IREE's dispatches are not timed one "
                "by one here; its TVM breakdown above shows which kernels of the same graph cost most)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(1)
    from mlc_lab.comparison import machine_summary
    from mlc_lab.interop.model_suites import HF_ARCHITECTURES

    print(f"this machine: {machine_summary()}; load average {os.getloadavg()}")
    results = []
    for name in args.models or HF_ARCHITECTURES:
        start = time.perf_counter()
        results.append(measure(name, args))
        print(f"  {name}: measured in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    print(format_table(results))
    why = format_why(results)
    if why:
        print("\nSlower than eager, and where the time goes (one call, measured):\n" + why)
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
