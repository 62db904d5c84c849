"""The tuning log: one JSON object per line, appended and flushed after every trial.

Why JSON lines: appending a line is the only write, so killing the tuner at any moment (even
`kill -9`) loses at most the trial in flight; a line torn by the kill is reported and skipped when
the log is read, never fatal. Resuming is reading the log: configs already measured are not
measured again. Every record keeps its target, so a log can mix machines safely.

    {"key": "...", "task": "matmul_512x512x512", "config": {...}, "cost": 0.0021, "error": null,
     "target": "llvm -mcpu=... -threads=2", "trial": 17, "strategy": "model", "time": 1732480000.0,
     "build_s": 0.05, "measure_s": 0.2, "wall_s": 4.1}
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Record:
    key: str
    config: dict[str, Any]
    cost: float
    error: str | None = None
    task: str = ""
    target: str = ""
    trial: int = 0
    strategy: str = ""
    time: float = field(default_factory=time.time)
    build_s: float = 0.0
    measure_s: float = 0.0
    wall_s: float = 0.0  #: seconds since the tuning session started (for curves against wall time)
    flops: float = 0.0  #: the kernel's FLOPs, so a log alone can be plotted in GFLOP/s

    @property
    def ok(self) -> bool:
        return self.error is None and math.isfinite(self.cost)

    def to_json(self) -> str:
        data = self.__dict__.copy()
        data["cost"] = self.cost if math.isfinite(self.cost) else None  # JSON has no inf
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Record:
        data = json.loads(line)
        if not isinstance(data, dict) or "key" not in data or "config" not in data:
            raise ValueError("not a tuning record (needs 'key' and 'config')")
        data["cost"] = float("inf") if data.get("cost") is None else float(data["cost"])
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class Problem:
    """A line of the log that could not be read, and why."""

    line: int
    reason: str


class TuningDatabase:
    """An append-only JSON-lines file of `Record`s; reads skip (and report) corrupted lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.problems: list[Problem] = []

    def append(self, record: Record) -> None:
        """Write one record durably: the line is complete on disk before the next trial starts."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":  # a line torn by a kill: end it, so ours starts clean
                    f.write(b"\n")
            f.write(record.to_json().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def records(self, key: str | None = None) -> list[Record]:
        """All readable records (of `key`), in the order written; problems go to `self.problems`."""
        self.problems = []
        if not self.path.exists():
            return []
        out = []
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = Record.from_json(line)
                except (ValueError, TypeError) as e:
                    self.problems.append(Problem(number, f"{type(e).__name__}: {e}"))
                    continue
                if key is None or record.key == key:
                    out.append(record)
        return out

    def best(self, key: str) -> Record | None:
        """The fastest successful record for `key` (None if there is none)."""
        ok = [r for r in self.records(key) if r.ok]
        return min(ok, key=lambda r: r.cost) if ok else None

    def keys(self) -> list[str]:
        return sorted({r.key for r in self.records()})

    def write_best(self, path: str | os.PathLike[str]) -> TuningDatabase:
        """A new log holding only each key's best successful record: all a compiler needs to apply it."""
        out = TuningDatabase(path)
        for key in self.keys():
            best = self.best(key)
            if best is not None:
                out.append(best)
        return out

    def __len__(self) -> int:
        return len(self.records())
