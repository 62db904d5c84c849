"""The tuning log: one JSON object per line, appended and flushed after every trial.

Why JSON lines: appending a line is the only write, so killing the tuner at any moment (even
`kill -9`) loses at most the trial in flight; a line torn by the kill is reported and skipped when
the log is read, never fatal. Resuming is reading the log: configs already measured are not
measured again. Every record keeps its target, so a log can mix machines safely.

    {"key": "...", "task": "matmul_512x512x512", "config": {...}, "cost": 0.0021, "error": null,
     "target": "llvm -mcpu=... -threads=2", "trial": 17, "strategy": "model", "time": 1732480000.0,
     "build_s": 0.05, "measure_s": 0.2, "wall_s": 4.1}

A log is input from outside (edited by hand, copied between machines, written by another version),
so every line is checked when read: its length and nesting are bounded before it is parsed, every
field has its type and range (a successful record has a finite, positive cost), and, given the
task's `SearchSpace`, its config must be a point of that space. A line failing any check is a
`Problem` (line number and reason, on `TuningDatabase.problems`), never a record: it is not
applied, not the best, not training data for a cost model.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlc_lab.errors import MlcLabError

if TYPE_CHECKING:
    from mlc_lab.tuning.space import SearchSpace

#: The longest line read (a real record is < 2 KiB: its key spells out one kernel); longer ones are refused unread.
MAX_LINE_BYTES = 1 << 16
#: The deepest nesting of brackets a record may have (record > config > a tile list is 3).
MAX_DEPTH = 8
_NUMBER_FIELDS = ("time", "build_s", "measure_s", "wall_s", "flops")
_TEXT_FIELDS = ("task", "target", "strategy")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')


class InvalidRecord(MlcLabError, ValueError):
    """A line of a tuning log that is not a valid record; the message says which field is wrong and why."""


class TuningLogWarning(UserWarning):
    """A tuning log held invalid records, or a record could not be applied: the default schedule was used."""


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
        """Parse and check one line; `InvalidRecord` (one line, naming the field) if it is not a valid record."""
        data = parse_line(line)
        if not isinstance(data, dict):
            raise InvalidRecord(f"not a tuning record: a JSON {type(data).__name__}, not an object")
        return cls(**checked_fields(data))


def parse_line(line: str) -> Any:
    """JSON of one line, refusing what would exhaust the parser (too long, too deep) and NaN/Infinity."""
    if len(line) > MAX_LINE_BYTES:
        raise InvalidRecord(f"line of {len(line)} characters is longer than the limit of {MAX_LINE_BYTES}")
    depth = nesting_depth(line)
    if depth > MAX_DEPTH:
        raise InvalidRecord(f"brackets nested {depth} deep, deeper than the limit of {MAX_DEPTH}")
    try:
        return json.loads(line, parse_constant=_refuse_constant)
    except RecursionError:  # belt and braces: nesting_depth should have refused it
        raise InvalidRecord("nested too deeply to parse") from None
    except ValueError as e:
        if isinstance(e, InvalidRecord):
            raise
        raise InvalidRecord(f"not JSON: {e}") from None


def _refuse_constant(name: str) -> Any:
    raise InvalidRecord(f"{name} is not a number JSON allows")


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside JSON strings (0 when there are too few brackets to matter)."""
    bare = _STRING.sub("", text)  # a record's key is JSON in a string: its brackets do not nest
    if bare.count("[") + bare.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    for ch in bare:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def checked_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The record's fields from a parsed line, each checked for type and range (unknown fields dropped)."""
    key = data.get("key")
    if not isinstance(key, str) or not key:
        raise InvalidRecord(f"'key' must be a non-empty string, not {_show(key)}")
    if "config" not in data:
        raise InvalidRecord("not a tuning record (needs 'key' and 'config')")
    config = data["config"]
    if not isinstance(config, dict):
        raise InvalidRecord(f"'config' must be an object of knob values, not {_show(config)}")
    for name, value in config.items():
        bad = _non_finite(value)
        if bad is not None:
            raise InvalidRecord(f"config knob {name!r} holds {bad}")
    error = data.get("error")
    if error is not None and not isinstance(error, str):
        raise InvalidRecord(f"'error' must be a string or null, not {_show(error)}")
    cost = data.get("cost")
    if error is not None:
        cost = float("inf")  # a failed trial has no cost, whatever the line says
    elif not _is_number(cost) or not math.isfinite(cost) or cost <= 0:
        raise InvalidRecord(f"'cost' of a successful trial must be a finite number > 0, not {_show(cost)}")
    out: dict[str, Any] = {"key": key, "config": config, "cost": float(cost), "error": error}
    for name in _TEXT_FIELDS:
        if name in data:
            if not isinstance(data[name], str):
                raise InvalidRecord(f"{name!r} must be a string, not {_show(data[name])}")
            out[name] = data[name]
    if "trial" in data:
        trial = data["trial"]
        if not isinstance(trial, int) or isinstance(trial, bool) or trial < 0:
            raise InvalidRecord(f"'trial' must be an integer >= 0, not {_show(trial)}")
        out["trial"] = trial
    for name in _NUMBER_FIELDS:
        if name in data:
            value = data[name]
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise InvalidRecord(f"{name!r} must be a finite number >= 0, not {_show(value)}")
            out[name] = float(value)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _non_finite(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"the non-finite number {value}"
    if isinstance(value, list):
        return next((bad for v in value if (bad := _non_finite(v)) is not None), None)
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


@dataclass
class Problem:
    """A line of the log that could not be read, or is not a valid record, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class LogCursor:
    """Where a reader stopped: the byte offset after the last whole line read, and that line's number."""

    offset: int = 0
    line: int = 0


@dataclass
class LogScan:
    """What one read of the log found: valid records, problems, and where to continue."""

    records: list[Record]
    problems: list[Problem]
    cursor: LogCursor


def summarize_problems(problems: list[Problem], path: str | os.PathLike[str], first: int = 3) -> str:
    """One line: how many invalid records were skipped, and the first few reasons."""
    if not problems:
        return f"{path}: no invalid records"
    shown = "; ".join(str(p) for p in problems[:first])
    more = f"; and {len(problems) - first} more" if len(problems) > first else ""
    s = "s" if len(problems) != 1 else ""
    return f"{path}: {len(problems)} invalid record{s} skipped ({shown}{more})"


class TuningDatabase:
    """An append-only JSON-lines file of `Record`s; reads skip (and report) invalid lines."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.problems: list[Problem] = []  #: the invalid lines found by the last `records`/`best` call

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

    def scan(
        self,
        key: str | None = None,
        space: SearchSpace | None = None,
        cursor: LogCursor | None = None,
        torn_tail: bool = True,
    ) -> LogScan:
        """Read from `cursor` (the start by default) to the end, checking every line.

        With `space` (which needs `key`), records of `key` must also be points of that space. An unfinished
        last line (no newline) is a problem when `torn_tail`, else left unread for the next scan (a tuner
        reading under the lock: see `mlc_lab.tuning.coordination`)."""
        if space is not None and key is None:
            raise ValueError("a search space belongs to one task: give its key too")
        cursor = LogCursor() if cursor is None else LogCursor(cursor.offset, cursor.line)
        records: list[Record] = []
        problems: list[Problem] = []
        if not self.path.exists():
            return LogScan(records, problems, cursor)
        with open(self.path, "rb") as f:
            f.seek(cursor.offset)
            while raw := f.readline(MAX_LINE_BYTES + 1):
                whole = raw.endswith(b"\n")
                if not whole and len(raw) > MAX_LINE_BYTES:  # refuse it unread: skip to its end
                    size = len(raw)
                    while raw and not raw.endswith(b"\n"):
                        raw = f.readline(1 << 20)
                        size += len(raw)
                    cursor.line += 1
                    cursor.offset = f.tell()
                    problems.append(Problem(cursor.line, f"line of {size} bytes is longer than the limit"))
                    continue
                if not whole and not torn_tail:
                    break
                cursor.line += 1
                cursor.offset += len(raw)
                text = raw.decode("utf-8", errors="replace")
                if not text.strip():
                    continue
                try:
                    record = Record.from_json(text)
                except InvalidRecord as e:
                    reason = str(e) if whole else f"unfinished line (torn by a kill?): {e}"
                    problems.append(Problem(cursor.line, reason))
                    continue
                if key is not None and record.key != key:
                    continue
                why = None if space is None else space.violation(record.config)
                if why is not None:
                    problems.append(Problem(cursor.line, f"config outside the task's search space: {why}"))
                    continue
                records.append(record)
        return LogScan(records, problems, cursor)

    def records(self, key: str | None = None, space: SearchSpace | None = None) -> list[Record]:
        """All valid records (of `key`; in `space` if given), in the order written; problems go to `self.problems`."""
        found = self.scan(key, space)
        self.problems = found.problems
        return found.records

    def best(self, key: str, space: SearchSpace | None = None) -> Record | None:
        """The fastest successful valid record for `key` (None if there is none)."""
        ok = [r for r in self.records(key, space) if r.ok]
        return min(ok, key=lambda r: r.cost) if ok else None

    def problem_summary(self, first: int = 3) -> str:
        """`self.problems` in one line: the count and the first few reasons."""
        return summarize_problems(self.problems, self.path, first)

    def keys(self) -> list[str]:
        return sorted({r.key for r in self.records()})

    def write_best(self, path: str | os.PathLike[str]) -> TuningDatabase:
        """A new log holding only each key's best successful record: all a compiler needs to apply it."""
        out = TuningDatabase(path)
        by_key: dict[str, Record] = {}
        for record in self.records():
            if record.ok and (record.key not in by_key or record.cost < by_key[record.key].cost):
                by_key[record.key] = record
        for key in sorted(by_key):
            out.append(by_key[key])
        return out

    def __len__(self) -> int:
        return len(self.records())
