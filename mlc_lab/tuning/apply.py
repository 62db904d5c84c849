"""Compile with tuned schedules: the tuning log as a schedule hook for `mlc_lab.codegen.tvm.build`.

    db = TuningDatabase("mlc_lab/tuning/data/small_cnn.jsonl")
    compiled = build(graph, schedule=schedule_from_db(db))

For each kernel the hook looks up the best record whose key equals the kernel's (op, shapes,
dtype, layout, attributes, fused ops, target); found, it applies that config; not found, it falls
back to the code generator's default schedule. `tasks_from_graph` lists the kernels worth tuning.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from mlc_lab.ir.graph import Graph, Node
from mlc_lab.tuning.database import Record, TuningDatabase
from mlc_lab.tuning.space import UnsupportedKernel, apply_config
from mlc_lab.tuning.task import Task, node_signature, target_signature

TUNABLE_OPS = ("matmul", "dense", "conv2d")


def is_tunable(node: Node) -> bool:
    """A contraction, or a fused group with exactly one contraction in it."""
    if node.op == "fused":
        return sum(n.op in TUNABLE_OPS for n in node.subgraph.nodes) == 1 and not any(
            n.op == "fused" for n in node.subgraph.nodes
        )
    return node.op in TUNABLE_OPS


def tasks_from_graph(graph: Graph, target: str = "") -> list[Task]:
    """One task per distinct tunable kernel of `graph` (identical kernels share a task and a record)."""
    tasks: dict[str, Task] = {}
    for node in graph.nodes:
        if is_tunable(node):
            task = Task(f"{graph.name}_{node.name}", node, target)
            tasks.setdefault(task.key, task)
    return list(tasks.values())


class DatabaseSchedule:
    """A schedule hook `(sch, node) -> None` applying the best logged config for each kernel."""

    def __init__(self, db: TuningDatabase, target: str = "", fallback: Callable[[Any, Node], None] | None = None):
        self.target = target or target_signature()
        self.fallback = fallback
        self.best: dict[str, Record] = {}
        for record in db.records():
            if record.ok and (record.key not in self.best or record.cost < self.best[record.key].cost):
                self.best[record.key] = record
        self.applied: list[str] = []  #: names of nodes scheduled from the log
        self.missed: list[str] = []  #: names of nodes that fell back

    def __call__(self, sch, node: Node) -> None:
        record = self.best.get(f"{node_signature(node)}@{self.target}")
        if record is not None:
            try:
                apply_config(sch, record.config)
                self.applied.append(node.name)
                return
            except UnsupportedKernel:
                pass
        self.missed.append(node.name)
        if self.fallback is not None:
            self.fallback(sch, node)

    def __repr__(self) -> str:
        return f"<DatabaseSchedule: {len(self.best)} tuned kernels, target {self.target!r}>"


def schedule_from_db(
    db: TuningDatabase | str | os.PathLike[str],
    target: str = "",
    fallback: Callable[[Any, Node], None] | None | str = "default",
) -> DatabaseSchedule:
    """The hook for `build(graph, schedule=...)`; `fallback="default"` is the code generator's default."""
    if not isinstance(db, TuningDatabase):
        db = TuningDatabase(db)
    if fallback == "default":
        fallback = _default_schedule()
    return DatabaseSchedule(db, target, fallback)


def _default_schedule():
    from mlc_lab.codegen.tvm.schedule import default_schedule

    return default_schedule


def tune_model(
    model: Any,
    example_inputs: Any,
    db: TuningDatabase | str | os.PathLike[str],
    trials: int = 32,
    passes: Any = "default",
    strategy: str = "model",
    progress: bool = True,
) -> dict[str, Any]:
    """Tune every distinct kernel `mlc_lab.compile(model, example_inputs, backend="tvm", passes=passes)`
    will build (same import, same pass preset, so the records' keys match); returns key -> TuneResult.
    `mlc_lab.compile(..., tuning_db=db)` then applies them."""
    from mlc_lab.api import import_model, resolve_passes
    from mlc_lab.passes import PassManager
    from mlc_lab.tuning.tuner import tune

    graph = import_model(model, example_inputs)
    graph = PassManager(resolve_passes(passes, graph, "tvm")).apply(graph)
    tasks = tasks_from_graph(graph)
    return {task.key: tune(task, trials, strategy=strategy, db=db, progress=progress) for task in tasks}
