"""Compile with tuned schedules: the tuning log as a schedule hook for `mlc_lab.codegen.tvm.build`.

    db = TuningDatabase("mlc_lab/tuning/data/small_cnn.jsonl")
    compiled = build(graph, schedule=schedule_from_db(db))

For each kernel the hook looks up the best record whose key equals the kernel's (op, shapes,
dtype, layout, attributes, fused ops, target) and whose config is in that kernel's search space;
found, it applies that config; not found, or failing to apply or build, the kernel falls back to the
code generator's default schedule (with a warning naming it, when a record was at fault): a tuning
log can make a build slower, never fail. `tasks_from_graph` lists the kernels worth tuning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from typing import Any

from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import is_contraction_kernel
from mlc_lab.tuning.database import Record, TuningDatabase, TuningLogWarning
from mlc_lab.tuning.kernel_source import KernelSource
from mlc_lab.tuning.measure import error_line
from mlc_lab.tuning.space import analyze, apply_config, space_for
from mlc_lab.tuning.task import Task, node_signature, target_signature


def is_tunable(node: Node) -> bool:
    """A contraction, or a fused group with exactly one contraction in it; an empty one has nothing to tune."""
    if any(0 in x.shape for x in (*node.inputs, node)):
        return False
    return is_contraction_kernel(node)


def tasks_from_graph(graph: Graph, target: str = "") -> list[Task]:
    """One task per distinct tunable kernel of `graph` (identical kernels share a task and a record)."""
    tasks: dict[str, Task] = {}
    for node in graph.nodes:
        if is_tunable(node):
            task = Task(f"{graph.name}_{node.name}", node, target)
            tasks.setdefault(task.key, task)
    return list(tasks.values())


class DatabaseSchedule:
    """A schedule hook `(sch, node) -> None` applying the best valid logged config for each kernel.

    A log never makes a build fail: for each kernel the fastest record whose config is a point of that
    kernel's search space is tried on a copy of the schedule (and, with `check_build`, that kernel is
    compiled alone); if none is valid, or it fails, the kernel gets the fallback (the default schedule)
    and a `TuningLogWarning` names the kernel and the reason. Invalid lines are reported when the log is read.
    """

    def __init__(
        self,
        db: TuningDatabase,
        target: str = "",
        fallback: Callable[[Any, Node], None] | None = None,
        check_build: bool = True,
    ):
        self.db = db
        self.target = target or target_signature()
        self.fallback = fallback
        self.check_build = check_build
        self.candidates: dict[str, list[Record]] = {}  #: successful records per key, fastest first
        for record in db.records():
            if record.ok:
                self.candidates.setdefault(record.key, []).append(record)
        for records in self.candidates.values():
            records.sort(key=lambda r: r.cost)
        self.problems = list(db.problems)  #: the log's invalid lines
        if self.problems:
            warnings.warn(f"tuning log {db.problem_summary()}; they are not used", TuningLogWarning, stacklevel=3)
        self.best: dict[str, Record] = {k: v[0] for k, v in self.candidates.items()}  #: per key, what applies
        self.applied: list[str] = []  #: names of nodes scheduled from the log
        self.missed: list[str] = []  #: names of nodes that fell back
        self.fell_back: list[tuple[str, str]] = []  #: (node name, why its record was not used)

    def __call__(self, sch, node: Node) -> None:
        key = f"{node_signature(node)}@{self.target}"
        candidates = self.candidates.get(key)
        if candidates:
            reason = self._apply_best(sch, node, key, candidates)
            if reason is None:
                self.applied.append(node.name)
                return
            self.best.pop(key, None)
            self.fell_back.append((node.name, reason))
            warnings.warn(
                f"tuning log {self.db.path}: kernel {node.name}: {reason}; "
                f"{'the default schedule is used' if self.fallback else 'it stays unscheduled'}",
                TuningLogWarning,
                stacklevel=2,
            )
        self.missed.append(node.name)
        if self.fallback is not None:
            self.fallback(sch, node)

    def algorithm(self, node: Node) -> int:
        """The Winograd tile size of the record this kernel will get (0: direct), asked before lowering."""
        candidates = self.candidates.get(f"{node_signature(node)}@{self.target}")
        return int(candidates[0].config.get("winograd", 0)) if candidates and is_tunable(node) else 0

    def _apply_best(self, sch, node: Node, key: str, candidates: list[Record]) -> str | None:
        """Apply the fastest valid record to `sch`; the reason it could not, or None when it did."""
        record, reason = apply_first_valid(sch, node, candidates, self.check_build, str(self.db.path))
        if record is not None:
            self.best[key] = record
        return reason

    @property
    def sources(self) -> dict[str, Any]:
        """Kernel name -> where its schedule came from (a `KernelSource`)."""
        out = {name: KernelSource(name, "exact", f"{self.db.path}") for name in self.applied}
        for name, why in self.fell_back:
            out[name] = KernelSource(name, "default", str(self.db.path), why)
        return out

    def __repr__(self) -> str:
        return f"<DatabaseSchedule: {len(self.candidates)} tuned kernels, target {self.target!r}>"


def apply_first_valid(
    sch, node: Node, candidates: list[Record], check_build: bool = True, log: str = "tuning log"
) -> tuple[Record | None, str | None]:
    """Apply to `sch` the first of `candidates` (fastest first) whose config is in the kernel's space.

    Returns (the record applied, None), or (None, the reason none could be): outside the space, failed
    to apply, or (with `check_build`) failed to compile. `sch` is untouched unless a record applied."""
    try:
        info = analyze(sch)
        space = space_for(info)
    except Exception as e:  # UnsupportedKernel, or a kernel shape analyze() does not know
        reason = f"it has records, but the search space does not cover it ({type(e).__name__}: {error_line(e)})"
        return None, reason
    rejected = []
    for record in candidates:
        why = space.violation(record.config)
        if why is None:
            break
        rejected.append(why)
    else:
        return None, f"all {len(rejected)} of its records are outside its search space (the fastest: {rejected[0]})"
    if rejected:
        warnings.warn(
            f"tuning log {log}: kernel {node.name}: {len(rejected)} faster records outside its search "
            f"space ignored (the fastest: {rejected[0]})",
            TuningLogWarning,
            stacklevel=4,
        )
    trial = sch.copy()  # a config failing halfway must leave `sch` untouched for the fallback
    try:
        apply_config(trial, record.config, info)
        if check_build:
            _build_alone(trial)
    except _BuildFailed as e:
        return None, f"its record (cost {record.cost:.3g}) failed to build: {e}"
    except Exception as e:  # whatever TVM raises: the record is at fault, and the default schedule works
        return None, f"its record (cost {record.cost:.3g}) failed to apply: {type(e).__name__}: {error_line(e)}"
    apply_config(sch, record.config, info)  # the same primitives again, on the real schedule
    return record, None


class _BuildFailed(Exception):
    """A record's schedule applied, but TVM could not compile the kernel with it."""


def _build_alone(sch) -> None:
    """Compile the scheduled kernel alone, as the compiler will (epilogue attached), to catch a failing record."""
    import tvm

    from mlc_lab.codegen.tvm.build import host_target
    from mlc_lab.codegen.tvm.lower import attach_epilogue

    attach_epilogue(sch)
    try:
        tvm.compile(tvm.IRModule({"main": sch.mod["main"]}), target=host_target())
    except Exception as e:
        raise _BuildFailed(f"{type(e).__name__}: {error_line(e)}") from e


def schedule_from_db(
    db: TuningDatabase | str | os.PathLike[str],
    target: str = "",
    fallback: Callable[[Any, Node], None] | None | str = "default",
    check_build: bool = True,
) -> DatabaseSchedule:
    """The hook for `build(graph, schedule=...)`; `fallback="default"` is the code generator's default."""
    if not isinstance(db, TuningDatabase):
        db = TuningDatabase(db)
    if not db.path.exists():
        warnings.warn(
            f"tuning log {db.path} does not exist: every kernel gets the default schedule", TuningLogWarning, 2
        )
    if fallback == "default":
        fallback = _default_schedule()
    return DatabaseSchedule(db, target, fallback, check_build)


def _default_schedule():
    from mlc_lab.codegen.tvm.schedule import default_schedule

    return default_schedule

