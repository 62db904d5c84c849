"""Tuning logs shipped with the package (mlc_lab/tuning/data/), so the chapter plots without tuning.

They were written by `TVM_NUM_THREADS=1 benchmarks/tuning.py --save-logs mlc_lab/tuning/data` (every
side on one thread, the steadiest setting on a shared machine), except small_cnn.jsonl, written with
`TVM_NUM_THREADS=2 ... --only cnn` because the chapter compiles with 2 threads and a record applies
only to its own target (cpu and thread count, part of the key). The machine is named in each
record's `target`; numbers from another machine will differ, the shapes of the curves less so.
"""

from __future__ import annotations

from pathlib import Path

from mlc_lab.tuning.database import TuningDatabase
from mlc_lab.tuning.tuner import TuneResult

DATA_DIR = Path(__file__).parent / "data"


def stored_logs() -> list[str]:
    """Names of the stored logs (file names without .jsonl)."""
    return sorted(p.stem for p in DATA_DIR.glob("*.jsonl"))


def stored_database(name: str) -> TuningDatabase:
    path = DATA_DIR / f"{name}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no stored log {name!r}; there are: {', '.join(stored_logs())}")
    return TuningDatabase(path)


def stored_run(name: str, key: str | None = None) -> TuneResult:
    """One tuning run from a stored log (the first key in it unless `key` is given), ready to plot."""
    records = stored_database(name).records()
    key = key or (records[0].key if records else None)
    return TuneResult.from_records([r for r in records if r.key == key])


def stored_benchmark() -> dict:
    """The numbers `benchmarks/tuning.py --json` printed when the stored logs were written
    (NumPy's and PyTorch's times on the same machine: the reference lines of the chapter's plots)."""
    import json

    return json.loads((DATA_DIR / "benchmark.json").read_text())
