"""Write mlc_lab/tuning/data/zoo_1thread.jsonl: every tunable kernel mlc_lab.compile builds for the zoo,
tuned at one thread, 32 trials each (chapter 8's "tvm tuned" column). About 5 minutes. The full log
goes to a temporary file; the shipped one keeps each kernel's best record.

    .venv/bin/python tools/tune_zoo.py                      # all four models
    .venv/bin/python tools/tune_zoo.py out.jsonl mlp        # some models into another log

Records are keyed by CPU and thread count: on another machine, tune again.
"""

import os
import sys
import tempfile
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"  # an idle TVM pool must not spin against the timed kernel

from mlc_lab import zoo  # noqa: E402
from mlc_lab.tuning import TuningDatabase, tune_model  # noqa: E402
from mlc_lab.tuning.stored import DATA_DIR  # noqa: E402


def main() -> None:
    out = sys.argv[1] if len(sys.argv) > 1 else str(DATA_DIR / "zoo_1thread.jsonl")
    full = TuningDatabase(tempfile.mktemp(suffix=".jsonl"))
    for name in sys.argv[2:] or zoo.names():
        start = time.time()
        model = zoo.load(name)
        results = tune_model(model.module, model.example_inputs, full, trials=32, progress=False)
        print(f"{name}: {len(results)} kernels tuned in {time.time() - start:.0f} s", flush=True)
    if os.path.exists(out):
        os.remove(out)
    full.write_best(out)
    print(f"best records of {len(full.keys())} kernels written to {out} (full log: {full.path})")


if __name__ == "__main__":
    main()
