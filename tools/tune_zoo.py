"""Write the shipped zoo logs: every tunable kernel mlc_lab.compile builds for the zoo, tuned at one thread
for one x86-64 feature level, each kernel's best record kept (chapter 9's "tvm tuned" column; the
schedule sources' "exact" and "transferred" records, `mlc_lab.tuning.sources`).

    .venv/bin/python tools/tune_zoo.py --level x86-64-v3            # AVX2 + FMA -> data/zoo_x86-64-v3.jsonl
    .venv/bin/python tools/tune_zoo.py --level x86-64-v4            # AVX-512    -> data/zoo_x86-64-v4.jsonl
    .venv/bin/python tools/tune_zoo.py --trials 8 --out o.jsonl mlp # some models, another log, this CPU

A level is compiled for a CPU of that level (`LEVEL_CPUS`; this machine's own CPU where it is of that level,
so its records are exact here) and measured here: an AVX-512 machine runs AVX2 code, so one machine
writes both logs. Records are keyed by that CPU and the thread count; on a CPU of another level they
do not transfer (`mlc_lab.tuning.isa`). The full log of every trial goes to a temporary file.
"""

import argparse
import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"  # an idle TVM pool must not spin against the timed kernel

from mlc_lab import zoo  # noqa: E402
from mlc_lab.tuning import TuningDatabase, tune_model  # noqa: E402
from mlc_lab.tuning.isa import X86_LEVELS, cpu_profile, system_cpu, this_profile  # noqa: E402
from mlc_lab.tuning.stored import DATA_DIR  # noqa: E402

#: The CPU each level's code is compiled for when this machine is not of that level (LLVM names).
LEVEL_CPUS = {"x86-64-v3": "haswell", "x86-64-v4": "skylake-avx512"}


def level_cpu(level: str) -> str:
    """The CPU to compile `level`'s code for: this one if it is of that level, else `LEVEL_CPUS[level]`;
    an error if this machine cannot run that level's code (measuring it would crash)."""
    order = [name for name, _ in X86_LEVELS]
    here = this_profile().level
    if here not in order or order.index(here) > order.index(level):
        raise SystemExit(f"this CPU ({system_cpu()}, {here}) cannot run {level} code: tune it on a {level} machine")
    if here == level:
        return system_cpu()
    cpu = LEVEL_CPUS[level]
    assert cpu_profile(cpu).level == level, (cpu, cpu_profile(cpu))
    return cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="zoo models (default: all)")
    p.add_argument("--level", choices=sorted(LEVEL_CPUS), help="feature level (default: this CPU as it is)")
    p.add_argument("--trials", type=int, default=32, help="trials per kernel")
    p.add_argument("--out", help="log to write (default: data/zoo_<level>.jsonl, or data/zoo_1thread.jsonl)")
    args = p.parse_args()
    mcpu = level_cpu(args.level) if args.level else system_cpu()
    default_name = f"zoo_{args.level}.jsonl" if args.level else "zoo_1thread.jsonl"
    out = args.out or str(DATA_DIR / default_name)
    target = {"kind": "llvm", "mcpu": mcpu, "num-cores": 1}
    full = TuningDatabase(tempfile.mktemp(suffix=".jsonl"))
    for name in args.models or zoo.names():
        start = time.time()
        model = zoo.load(name)
        results = tune_model(model.module, model.example_inputs, full, args.trials, progress=False, target=target)
        print(f"{name}: {len(results)} kernels tuned for -mcpu={mcpu} in {time.time() - start:.0f} s", flush=True)
    if os.path.exists(out):
        os.remove(out)
    full.write_best(out)
    print(f"best records of {len(full.keys())} kernels written to {out} (full log: {full.path})")


if __name__ == "__main__":
    sys.exit(main())
