"""Real models timed: each Hugging Face architecture on mlc_lab's TVM and MLIR vs PyTorch eager and torch.compile.

    python benchmarks/real_models.py                                # the 7 tiny-config HF architectures
    python benchmarks/real_models.py --models gpt2 bert --rounds 5
    python benchmarks/real_models.py --tuning-db tuning.jsonl       # adds a "tvm tuned" column
    python benchmarks/real_models.py --no-inductor                  # skip torch.compile (slow to compile)

The models are those of `mlc_lab.interop.model_suites` (tiny configs, random weights, nothing downloaded).
One thread for every runtime (`mlc_lab.bench.pin_threads`), contenders timed round-robin in one process
(`interleaved_medians`: a load burst hits all alike), median per-call seconds reported with the ratio to
eager. "tvm" is `mlc_lab.compile(..., backend="tvm")` with the schedules this machine has (default
templates; shipped or cached tuning records where one exists for this CPU: the `sched` column counts
kernels by schedule source). Every mlc_lab call takes and returns torch tensors (conversions included).
Each output is checked against eager (max abs error over the output's scale) before it is timed.
"""

from __future__ import annotations

import os
import sys

# Before NumPy loads OpenBLAS (importing mlc_lab imports NumPy): every runtime gets one thread.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from mlc_lab.bench import interleaved_medians, pin_threads  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=None, help="HF architectures (default: all)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=5, help="calls per contender per round")
    p.add_argument("--tuning-db", default=None, help="auto-tuner database for a 'tvm tuned' column")
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
    compile_s, errors, schedules = {}, {}, ""
    builds = {"tvm": {"backend": "tvm"}}
    if args.tuning_db:
        builds["tvm tuned"] = {"backend": "tvm", "tuning_db": args.tuning_db}
    if not args.no_mlir:
        builds["mlir"] = {"backend": "mlir"}
    for label, options in builds.items():
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compiled = mlc_lab.compile(model, inputs, **options)
            out = compiled(*inputs)
        except Exception as e:  # noqa: BLE001 - reported in the table, the other contenders still run
            errors[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
            continue
        compile_s[label] = time.perf_counter() - start
        errors[label] = relative_error(out, eager_out)
        contenders[label] = lambda c=compiled: c(*inputs)
        if label == "tvm":
            schedules = ",".join(f"{k}:{v}" for k, v in sorted(compiled.schedule_coverage().items()))
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
    return {"name": name, "times": times, "compile_s": compile_s, "errors": errors, "schedules": schedules}


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
        lines.append(row + "  " + "; ".join(notes) + (f"; sched {r['schedules']}" if r["schedules"] else ""))
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
    print(f"load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
