"""Where a kernel's schedule comes from when the user gives none: the best this machine knows.

    hook = schedule_sources()                      # what mlc_lab.compile(..., backend="tvm") uses
    compiled = build(graph, schedule=hook)
    hook.sources["fused_dense_bias_add_relu"]      # KernelSource(kind="transferred", origin=..., detail=...)

For each tunable kernel, in this order:

1. **exact**, from the user's tuning cache (`mlc_lab.tuning.cache`): records tuned on this machine
   (cpu and thread count equal), kept only where the probe finds them faster than the default;
   reported as **tuned now** when this session's tuning wrote them;
2. **exact**, from the logs shipped in mlc_lab/tuning/data/ for the same target;
3. **transferred**: records of the same kernel from a *similar* CPU (same `IsaProfile`: architecture,
   ISA level such as x86-64-v4, vector width; never the CPU's name), same thread count first.
   A transferred record is re-validated on first use: the kernel built with it must give the
   interpreter's answer on random inputs, or it is not used (a warning says why). It is also timed
   against the default schedule (the *probe*), and the faster one is kept. The verdict goes to the
   cache's checked.jsonl, so each record is checked once per machine;
4. **default**: the code generator's default schedule (`mlc_lab.codegen.tvm.schedule`).

The probe: `probe=None` (the default) times every record but the shipped ones for this very CPU (tuned
and checked by the developers on it): records from elsewhere may not pay here, and a record the user
tuned here for a few seconds may be worse than the default; `probe=True` times the shipped exact
records too, `probe=False` none (validation still runs for transferred ones). A verdict is kept in the
cache's checked.jsonl, so each record is timed once per machine. The
probe times the kernel alone, on the model's shapes and weights, not inside the running model: cheap
(two kernel builds), but a kernel whose neighbours evict its data from the caches may differ in the model.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlc_lab.ir.graph import Node
from mlc_lab.tuning.database import Record, TuningDatabase, TuningLogWarning
from mlc_lab.tuning.kernel_source import KernelSource
from mlc_lab.tuning.measure import error_line
from mlc_lab.tuning.strategies import config_id
from mlc_lab.tuning.task import TARGET_KEY, Task, node_signature, split_key, target_signature

#: The kinds of schedule source, in the order they are tried (what reports count).
SOURCE_KINDS = ("tuned now", "exact", "transferred", "default")
#: Output tolerance of the re-validation against the interpreter (relative; absolute = this x max |expected|).
VALIDATION_RTOL = 1e-4
#: Timings per side of the probe (the fastest counts: on a shared machine others only add time).
PROBE_REPEAT = 3
#: Transferred candidates tried per kernel (fastest on their own machine first) before the default is used.
MAX_TRANSFER_TRIES = 2
#: Revision of the default schedule a probe verdict was measured against. Bump it when the default gets
#: faster (weights packed at build time: 2; a 512-step inner reduction and vectorised padding: 3; the conv
#: knobs: 4; AVX2 matmul/dense register tiles from zeroed registers, the weight packed in whole vectors: 5):
#: a verdict "the record beats the default" from an older revision is stale, and the record is probed again.
DEFAULT_REVISION = 5
PROBED = f"probed against default r{DEFAULT_REVISION}"


class ScheduleSourceWarning(TuningLogWarning):
    """A transferred record failed its re-validation here; the kernel got its default schedule."""


@dataclass
class _Candidate:
    record: Record
    origin: str  #: "user cache <path>" / "shipped <file>"


def shipped_logs() -> list[Path]:
    """The logs shipped with the package (mlc_lab/tuning/data/*.jsonl)."""
    from mlc_lab.tuning.stored import DATA_DIR

    return sorted(DATA_DIR.glob("*.jsonl"))


class ScheduleSources:
    """A schedule hook `(sch, node) -> None` choosing each kernel's schedule source (see the module doc).

    `sources` maps each tunable kernel's node name to its `KernelSource`; `coverage()` counts them.
    """

    def __init__(
        self,
        cache: TuningDatabase | None = None,
        shipped: Iterable[str | os.PathLike[str]] = (),
        checked: TuningDatabase | None = None,
        *,
        probe: bool | None = None,
        tuned_now: Iterable[str] = (),
        target: str = "",
        fallback: Callable[[Any, Node], None] | None = None,
        check_build: bool = True,
    ) -> None:
        from mlc_lab.tuning.cache import read_checked

        self.target = target or target_signature()
        parsed = TARGET_KEY.fullmatch(self.target)
        self.mcpu, self.threads = (parsed["mcpu"], int(parsed["threads"])) if parsed else ("", 0)
        self.probe = probe
        self.tuned_now = set(tuned_now)  #: keys this session tuned (reported as "tuned now")
        self.fallback = fallback
        self.check_build = check_build
        self.cache, self.checked = cache, checked
        self.exact: dict[str, list[_Candidate]] = {}  #: key -> records for this target, cache first
        self.foreign: dict[str, list[_Candidate]] = {}  #: kernel signature -> records of other targets
        logs = [(cache, f"user cache {cache.path}")] if cache is not None else []
        logs += [(TuningDatabase(p), f"shipped {Path(p).name}") for p in shipped]
        for db, origin in logs:
            for record in read_checked(db) if db is cache else db.records():
                self._index(record, origin)
        for found in self.exact.values():  # the user's cache first, then the fastest
            found.sort(key=lambda c: (c.origin.startswith("shipped"), c.record.cost))
        for found in self.foreign.values():  # the same thread count first, then the fastest
            found.sort(key=lambda c: self._rank(c.record))
        self.verdicts: dict[tuple[str, str], Record] = {}  #: (key, config id) -> the last verdict here
        for record in read_checked(checked) if checked is not None and checked.path.exists() else []:
            self.verdicts[(record.key, config_id(record.config))] = record
        self.sources: dict[str, KernelSource] = {}  #: node name -> where its schedule came from

    def _index(self, record: Record, origin: str) -> None:
        if not record.ok:
            return
        parts = split_key(record.key)
        if parts is None:  # another tuner's key (MetaSchedule's), or not a target we can read
            return
        signature, mcpu, threads = parts
        if mcpu == self.mcpu and threads == self.threads:
            self.exact.setdefault(record.key, []).append(_Candidate(record, origin))
        elif _similar(mcpu, self.mcpu):
            self.foreign.setdefault(signature, []).append(_Candidate(record, origin))

    def _rank(self, record: Record) -> tuple[bool, float]:
        parts = split_key(record.key)
        return (parts is None or parts[2] != self.threads, record.cost)

    # -- the hook ---------------------------------------------------------------------------------
    def __call__(self, sch, node: Node) -> None:
        from mlc_lab.tuning.apply import is_tunable

        if not is_tunable(node):
            self._default(sch, node)
            return
        signature = node_signature(node)
        key = f"{signature}@{self.target}"
        notes: list[str] = []
        if self._try_exact(sch, node, key, notes):
            return
        if self._try_transfer(sch, node, key, signature, notes):
            return
        self.sources[node.name] = KernelSource(node.name, "default", "", "; ".join(notes) or "no record")
        self._default(sch, node)

    def algorithm(self, node: Node) -> int:
        """The Winograd tile size of the record this kernel will most likely get (0: direct), asked before
        lowering: the first candidate, exact then transferred, that no verdict here turned down. Should the
        record still fail here, the kernel keeps that lowering with the default schedule's tiles."""
        from mlc_lab.tuning.apply import is_tunable

        if not is_tunable(node):
            return 0
        signature = node_signature(node)
        key = f"{signature}@{self.target}"
        candidates = [*self.exact.get(key, []), *self.foreign.get(signature, [])[:MAX_TRANSFER_TRIES]]
        for candidate in candidates:
            verdict = self.verdicts.get((key, config_id(candidate.record.config)))
            if verdict is None or verdict.ok:
                return int(candidate.record.config.get("winograd", 0))
        return 0

    def _default(self, sch, node: Node) -> None:
        if self.fallback is not None:
            self.fallback(sch, node)

    def _try_exact(self, sch, node: Node, key: str, notes: list[str]) -> bool:
        from mlc_lab.tuning.apply import apply_first_valid

        candidates = self.exact.get(key, [])
        for origin in dict.fromkeys(c.origin for c in candidates):
            records = [c.record for c in candidates if c.origin == origin and not self._rejected(key, c.record, notes)]
            if not records:
                continue
            trial = sch.copy()
            record, why = apply_first_valid(trial, node, records, self.check_build, origin)
            if record is None:
                notes.append(f"{origin}: {why}")
                continue
            kind = "tuned now" if key in self.tuned_now else "exact"
            probe = self.probe is True or (self.probe is None and not origin.startswith("shipped"))
            verdict = self._verdict(node, key, record, origin, probe, validate=False) if probe else None
            if verdict is not None and not verdict.ok:
                notes.append(f"{origin}: {verdict.error}")
                continue
            self._apply(sch, record)
            self.sources[node.name] = KernelSource(node.name, kind, f"{origin}, {record.target}", _timing(verdict))
            return True
        return False

    def _try_transfer(self, sch, node: Node, key: str, signature: str, notes: list[str]) -> bool:
        from mlc_lab.tuning.apply import apply_first_valid

        tries = 0
        for candidate in self.foreign.get(signature, []):
            if tries >= MAX_TRANSFER_TRIES:
                break
            record = candidate.record
            if self._rejected(key, record, notes):
                continue
            tries += 1
            trial = sch.copy()
            applied, why = apply_first_valid(trial, node, [record], False, candidate.origin)
            if applied is None:
                notes.append(f"{candidate.origin} ({record.target}): {why}")
                continue
            verdict = self._verdict(node, key, record, candidate.origin, self.probe is not False, validate=True)
            if not verdict.ok:
                notes.append(f"{candidate.origin} ({record.target}): {verdict.error}")
                continue
            self._apply(sch, record)
            origin = f"{candidate.origin}, {record.target}"
            self.sources[node.name] = KernelSource(node.name, "transferred", origin, f"validated; {_timing(verdict)}")
            return True
        return False

    def _rejected(self, key: str, record: Record, notes: list[str]) -> bool:
        """Whether an earlier check on this machine turned this record down (the reason goes to `notes`)."""
        verdict = self.verdicts.get((key, config_id(record.config)))
        if verdict is not None and not verdict.ok:
            notes.append(f"checked before: {verdict.error}")
            return True
        return False

    def _verdict(self, node: Node, key: str, record: Record, origin: str, probe: bool, validate: bool) -> Record:
        """Validate `record` on this kernel against the interpreter and (with `probe`) time it against the default.

        A verdict already in the checked log is reused (re-timed if it must be probed and was not probed
        against this `DEFAULT_REVISION` of the default schedule)."""
        known = self.verdicts.get((key, config_id(record.config)))
        if known is not None and (known.ok or not validate) and (not probe or known.strategy.endswith(PROBED)):
            return known
        verdict = check_record(node, record, self.target, probe, self.fallback)
        verdict = Record(
            key=key,
            config=record.config,
            cost=verdict.cost,
            error=verdict.error,
            task=node.name,
            target=self.target,
            strategy=f"checked {record.target}{' ' + PROBED if probe else ''}",
            flops=record.flops,
        )
        self.verdicts[(key, config_id(record.config))] = verdict
        if self.checked is not None:
            try:
                from mlc_lab.tuning.cache import writable

                writable(self.checked).append(verdict)
            except OSError as e:  # the cache is a convenience: a read-only one only costs a re-check next time
                warnings.warn(f"tuning cache: verdict not saved ({e})", TuningLogWarning, stacklevel=4)
        if validate and verdict.error and verdict.error.startswith("invalid here"):
            warnings.warn(
                f"kernel {node.name}: record from {origin} ({record.target}) {verdict.error}; "
                "the default schedule is used",
                ScheduleSourceWarning,
                stacklevel=4,
            )
        return verdict

    def _apply(self, sch, record: Record) -> None:
        from mlc_lab.tuning.space import analyze, apply_config

        apply_config(sch, record.config, analyze(sch))

    # -- reports ----------------------------------------------------------------------------------
    def coverage(self) -> dict[str, int]:
        """How many tunable kernels got each kind of source (every kind listed, zeros included)."""
        counts = Counter(s.kind for s in self.sources.values())
        return {kind: counts.get(kind, 0) for kind in SOURCE_KINDS}

    def summary(self) -> str:
        """One line: the count of each source, e.g. '2 exact, 1 transferred, 3 default'."""
        return ", ".join(f"{n} {kind}" for kind, n in self.coverage().items() if n) or "no tunable kernels"

    def report(self) -> str:
        """One line per tunable kernel: its source, origin and why."""
        return "\n".join(str(s) for s in self.sources.values())

    def __repr__(self) -> str:
        return f"<ScheduleSources {self.target!r}: {self.summary()}>"


def _similar(mcpu: str, this: str) -> bool:
    from mlc_lab.tuning.isa import similar

    return similar(mcpu, this)


def _timing(verdict: Record | None) -> str:
    if verdict is None or not verdict.strategy.endswith(PROBED):
        return "not timed against the default"
    return f"probe: record {verdict.cost * 1e6:.3g} us, faster than the default here"


def check_record(
    node: Node, record: Record, target: str, probe: bool, default: Callable[[Any, Node], None] | None
) -> Record:
    """Build `node` with the record's config: its output must equal the interpreter's on random inputs
    (else error "invalid here: ..."); with `probe`, also time the default schedule and refuse the record
    when the default is faster (error "slower than the default ..."). Returns a Record: cost = its time here."""
    from mlc_lab.tuning.measure import MeasuredCost

    repeat, min_ms = (PROBE_REPEAT, 5) if probe else (1, 0)
    try:
        cost = MeasuredCost(Task(node.name, node, target), repeat=repeat, min_repeat_ms=min_ms, rtol=VALIDATION_RTOL)
        trial = cost(record.config)
    except Exception as e:  # the kernel cannot even be set up for measuring: the record cannot be trusted
        return Record(record.key, record.config, math.inf, f"invalid here: {type(e).__name__}: {error_line(e)}")
    if not trial.ok:
        return Record(record.key, record.config, math.inf, f"invalid here: {trial.error}")
    if probe and default is not None:
        # interleaved, two runs a side (the fastest of each counts): a burst of load from elsewhere hits both
        first = cost.measure_hook(default)
        again = cost(record.config)
        second = cost.measure_hook(default)
        best = min(trial.cost, again.cost if again.ok else math.inf)
        base = min((t.cost for t in (first, second) if t.ok), default=math.inf)
        if base < best:
            us = f"record {best * 1e6:.3g} us, default {base * 1e6:.3g} us"
            why = f"slower than the default schedule here ({us})"
            return Record(record.key, record.config, math.inf, why)
        return Record(record.key, record.config, best)
    return Record(record.key, record.config, trial.cost)


def schedule_sources(
    probe: bool | None = None,
    tuned_now: Iterable[str] = (),
    use_cache: bool = True,
    target: str = "",
) -> ScheduleSources:
    """The hook `mlc_lab.compile(..., backend="tvm")` uses by default: the user's cache, the shipped logs,
    transfers from similar CPUs, then the code generator's default schedule."""
    from mlc_lab.codegen.tvm.schedule import default_schedule
    from mlc_lab.tuning.cache import checked_log, tuning_cache

    cache = tuning_cache() if use_cache else None
    checked = checked_log() if use_cache else None
    return ScheduleSources(
        cache, shipped_logs(), checked, probe=probe, tuned_now=tuned_now, target=target, fallback=default_schedule
    )
