"""Several tuners on one log: a file lock around each read-decide-write step, and claims of configs in flight.

Why: two tuners on one log (two terminals, two notebooks) would otherwise each measure the same configs,
and each would report only its own best. Under `SharedLog.locked()` (a `filelock` on `<log>.lock`) a tuner
reads what the others appended since it last looked, then claims the config it is about to measure in
`<log>.claims`; the others treat a claimed config as taken. A claim ends when its record reaches the log.
A claim of a tuner that died (`kill -9`) is stale and ignored: its process is gone (same host) or it is
older than `stale_s`. A tuner whose trials are all logged or claimed waits for the others' claims to
reach the log, so every tuner ends with the same trials and the same best. The log itself stays a
plain append-only list of records (see `database`); `<log>.claims` is removed when no claim is left.

The lock works between processes and between threads (each `SharedLog` opens its own lock) on one machine's
file system; it is held only while reading or appending a few lines, never while a trial is measured.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout

from mlc_lab.errors import MlcLabError
from mlc_lab.tuning.database import MAX_LINE_BYTES, LogCursor, LogScan, Problem, TuningDatabase
from mlc_lab.tuning.strategies import config_id

if TYPE_CHECKING:
    from mlc_lab.tuning.space import SearchSpace

#: How long to wait for another tuner's lock before giving up with an error (it is held for milliseconds).
LOCK_TIMEOUT_S = 120.0
#: How far in the future another machine's clock may date a claim before the claim counts as bogus.
CLOCK_SKEW_S = 60.0


class TuningLogLocked(MlcLabError, RuntimeError):
    """Another process held the tuning log's lock for longer than `LOCK_TIMEOUT_S`."""


class SharedLog:
    """One tuner's view of a log others may append to: locked reads of what is new, claims of configs in flight."""

    def __init__(self, db: TuningDatabase, stale_s: float = 3600.0) -> None:
        self.db = db
        self.stale_s = stale_s
        self.claims_path = Path(f"{db.path}.claims")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._lock = FileLock(f"{db.path}.lock", timeout=LOCK_TIMEOUT_S)
        folder = db.path.parent if db.path.parent.exists() else Path(".")
        #: False for a log nobody can append to here (a shipped one): read it, without lock or claims
        self.writable = os.access(folder, os.W_OK) and (not db.path.exists() or os.access(db.path, os.W_OK))
        self._cursor = LogCursor()
        self.problems: list[Problem] = []  #: invalid lines seen so far

    def locked(self):
        """A context manager holding the log's lock (a clear error, not a hang, if another process keeps it)."""
        return _Held(self) if self.writable else contextlib.nullcontext(self)

    def read_new(self, key: str, space: SearchSpace | None = None) -> LogScan:
        """Records of `key` appended since the last call (call it under `locked()`); problems are accumulated."""
        found = self.db.scan(key, space, self._cursor, torn_tail=False)
        self._cursor = found.cursor
        self.problems += found.problems
        return found

    def finish_reading(self, key: str, space: SearchSpace | None = None) -> None:
        """Report an unfinished last line too (a tuner killed mid-write), once no more lines are expected."""
        found = self.db.scan(key, space, self._cursor, torn_tail=True)
        self.problems += found.problems

    def claim(self, key: str, config: dict[str, Any]) -> None:
        """Mark `config` as being measured by this tuner (call it under `locked()`)."""
        if not self.writable:
            return
        line = json.dumps({"key": key, "config": config_id(config), "owner": self.owner, "time": time.time()})
        with open(self.claims_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def pending(self, key: str, measured: set[str]) -> set[str]:
        """Ids of configs of `key` that other live tuners claimed and have not logged yet (call under `locked()`)."""
        return {c["config"] for c in self._live_claims() if c["key"] == key and c["owner"] != self.owner} - measured

    def release(self, measured: dict[str, set[str]] | None = None) -> None:
        """Drop this tuner's claims, and claims that are stale or already logged (`measured`: key -> config ids)."""
        measured = measured or {}
        if not self.writable:
            return
        with self.locked():
            if not self.claims_path.exists():
                return
            keep = [
                c
                for c in self._live_claims()
                if c["owner"] != self.owner and c["config"] not in measured.get(c["key"], set())
            ]
            if keep:
                tmp = self.claims_path.with_suffix(".claims.tmp")
                tmp.write_text("".join(json.dumps(c) + "\n" for c in keep), encoding="utf-8")
                os.replace(tmp, self.claims_path)
            else:
                self.claims_path.unlink()

    def _live_claims(self) -> list[dict[str, Any]]:
        if not self.claims_path.exists():
            return []
        now, out = time.time(), []
        with open(self.claims_path, "rb") as f:
            while raw := f.readline(MAX_LINE_BYTES + 1):
                claim = _parse_claim(raw)
                if claim is not None and self._alive(claim, now):
                    out.append(claim)
        return out

    def _alive(self, claim: dict[str, Any], now: float) -> bool:
        if not -CLOCK_SKEW_S <= now - claim["time"] < self.stale_s:
            return False
        host, _, rest = claim["owner"].partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname():
            return True  # another machine's tuner: only its age can tell
        if not pid.isdigit() or int(pid) <= 0:
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, OverflowError):
            return True
        return True


def _parse_claim(raw: bytes) -> dict[str, Any] | None:
    """One claim line, or None for anything else (a claim is only a hint: a broken one is ignored)."""
    if not raw.endswith(b"\n"):
        return None
    try:
        claim = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    fields = {"key": str, "config": str, "owner": str, "time": float | int}
    if not isinstance(claim, dict) or not all(isinstance(claim.get(k), t) for k, t in fields.items()):
        return None
    return claim


class _Held:
    def __init__(self, shared: SharedLog) -> None:
        self.shared = shared

    def __enter__(self) -> SharedLog:
        try:
            self.shared._lock.acquire()
        except Timeout:
            raise TuningLogLocked(
                f"tuning log {self.shared.db.path} stayed locked for {LOCK_TIMEOUT_S:.0f} s "
                f"(lock file {self.shared._lock.lock_file}): is another tuner stuck?"
            ) from None
        return self.shared

    def __exit__(self, *exc) -> None:
        self.shared._lock.release()
