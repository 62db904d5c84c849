"""Write mlc_lab/tuning/data/zoo_1thread.jsonl: every tunable kernel mlc_lab.compile builds for the zoo,
tuned at one thread, 32 trials each (chapter 8's "tvm tuned" column). About 5 minutes.

    .venv/bin/python tools/tune_zoo.py                      # all four models
    .venv/bin/python tools/tune_zoo.py out.jsonl mlp        # some models into another log

Records are keyed by CPU and thread count: on another machine, tune again.
"""

import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TVM_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["TVM_THREAD_POOL_SPIN_COUNT"] = "0"  # an idle TVM pool must not spin against the timed kernel

from mlc_lab import zoo  # noqa: E402
from mlc_lab.tuning import tune_model  # noqa: E402
from mlc_lab.tuning.stored import DATA_DIR  # noqa: E402


def main() -> None:
    db = sys.argv[1] if len(sys.argv) > 1 else str(DATA_DIR / "zoo_1thread.jsonl")
    for name in sys.argv[2:] or zoo.names():
        start = time.time()
        model = zoo.load(name)
        results = tune_model(model.module, model.example_inputs, db, trials=32, progress=False)
        print(f"{name}: {len(results)} kernels tuned in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
