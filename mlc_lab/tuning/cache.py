"""The per-machine tuning cache: what this user tuned and checked on this machine, kept between sessions.

    <cache dir>/tuning.jsonl   records tuned here (`mlc-lab tune-model`, `mlc_lab.compile(tune=...)`)
    <cache dir>/checked.jsonl  verdicts on records from elsewhere (transferred from a similar CPU) and on
                               tuned records probed against the default schedule: a record that passed
                               (cost = its time here) or failed (error = why), so each is checked once

The cache dir is `platformdirs.user_cache_dir("mlc-lab")` (~/.cache/mlc-lab on Linux), or the folder
named by the environment variable `MLC_LAB_CACHE_DIR` (tests point it at a temporary folder).
Both files are tuning logs (`mlc_lab.tuning.database`): appended one flushed line at a time, so a
`kill -9` loses at most the trial in flight; a corrupt line is reported and skipped, and every good
record around it is kept. Records carry their target, so one cache may hold several machines' records
(a home directory shared between machines).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from mlc_lab.errors import MlcLabError
from mlc_lab.tuning.database import TuningDatabase, TuningLogWarning

#: The environment variable naming the cache folder (instead of the user's cache directory).
CACHE_ENV = "MLC_LAB_CACHE_DIR"
TUNING_LOG = "tuning.jsonl"
CHECKED_LOG = "checked.jsonl"


class TuningCacheError(MlcLabError, OSError):
    """The tuning cache cannot be used: its folder is a file, or a log in it cannot be read or written."""


def cache_dir() -> Path:
    """The folder of this user's tuning cache (not created here)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - platformdirs is a dependency; XDG's rule as a fallback
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return Path(base) / "mlc-lab"
    return Path(platformdirs.user_cache_dir("mlc-lab", appauthor=False))


def _log(name: str) -> TuningDatabase:
    folder = cache_dir()
    if folder.exists() and not folder.is_dir():
        raise TuningCacheError(f"tuning cache {folder} is not a folder (set {CACHE_ENV} to a folder)")
    path = folder / name
    if path.exists() and not path.is_file():
        raise TuningCacheError(f"tuning cache log {path} is not a file")
    if path.exists() and not os.access(path, os.R_OK):
        raise TuningCacheError(f"tuning cache log {path} is not readable")
    return TuningDatabase(path)


def tuning_cache() -> TuningDatabase:
    """This user's log of records tuned on this machine."""
    return _log(TUNING_LOG)


def checked_log() -> TuningDatabase:
    """This user's log of verdicts on records checked here (re-validation and the probe against the default)."""
    return _log(CHECKED_LOG)


def writable(db: TuningDatabase) -> TuningDatabase:
    """`db`, after making sure a record can be appended (its folder created); else `TuningCacheError`."""
    try:
        db.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TuningCacheError(f"tuning cache folder {db.path.parent} cannot be created: {e.strerror}") from None
    if not os.access(db.path.parent, os.W_OK) or (db.path.exists() and not os.access(db.path, os.W_OK)):
        raise TuningCacheError(f"tuning cache log {db.path} is not writable (set {CACHE_ENV} to another folder)")
    return db


def read_checked(db: TuningDatabase) -> list:
    """The valid records of a cache log; a warning (not an error) names the corrupt lines, which are skipped."""
    records = db.records()
    if db.problems:
        warnings.warn(
            f"tuning cache {db.problem_summary()}; the {len(records)} good records are used "
            f"(delete {db.path} to start over)",
            TuningLogWarning,
            stacklevel=3,
        )
    return records
