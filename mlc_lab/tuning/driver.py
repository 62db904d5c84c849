"""`tune_model`: tune every kernel `mlc_lab.compile(model, backend="tvm")` will build, into a tuning log.

The one tuning entry point that starts from a framework model: it imports the model and runs the same
pass preset as `mlc_lab.compile` (`frontends.auto`, `passes.presets`), so the records' keys match the
kernels compile builds. It sits on top of the tuning engine (tasks, tuner, budget); nothing in the
engine imports it.
"""

from __future__ import annotations

import os
from typing import Any

from mlc_lab.frontends.auto import import_model
from mlc_lab.passes import PassManager
from mlc_lab.passes.presets import resolve_passes
from mlc_lab.tuning.apply import tasks_from_graph
from mlc_lab.tuning.budget import parse_budget, tune_graph
from mlc_lab.tuning.database import TuningDatabase
from mlc_lab.tuning.tuner import tune

__all__ = ["tune_model"]


def tune_model(
    model: Any,
    example_inputs: Any,
    db: TuningDatabase | str | os.PathLike[str],
    trials: int = 32,
    passes: Any = "default",
    strategy: str = "model",
    progress: bool = True,
    budget: str | float | None = None,
    target: Any = None,
) -> dict[str, Any]:
    """Tune every distinct kernel `mlc_lab.compile(model, example_inputs, backend="tvm", passes=passes)`
    will build (same import, same pass preset, so the records' keys match); returns key -> TuneResult.
    `mlc_lab.compile(..., tuning_db=db)` then applies them.

    budget: a time budget ("90s", "5m", seconds) shared by all kernels instead of `trials` per kernel
    (`mlc_lab.tuning.budget`).
    target: the TVM target to compile for (default: this CPU), e.g. `{"kind": "llvm", "mcpu": "haswell"}` to
    tune AVX2 code on an AVX-512 machine; its records are keyed by its `mcpu` (`tools/tune_zoo.py`)."""
    graph = import_model(model, example_inputs)
    graph = PassManager(resolve_passes(passes, graph, "tvm")).apply(graph)
    if budget is not None:
        if target is not None:
            raise ValueError("tune_model: a time budget tunes for this CPU only; give trials= with target=")
        log = db if isinstance(db, TuningDatabase) else TuningDatabase(db)
        return tune_graph(graph, parse_budget(budget), log, progress=progress, strategy=strategy)
    key = ""
    if target is not None:
        from mlc_lab.codegen.target import resolve_target
        from mlc_lab.tuning.task import target_signature

        target = resolve_target(target)
        key = target_signature(target)
    tasks = tasks_from_graph(graph, key)
    return {t.key: tune(t, trials, strategy=strategy, db=db, progress=progress, target=target) for t in tasks}
