"""Tuning a whole model within a time budget, into the user's tuning cache.

    tune_graph(graph, parse_budget("5m"))       # what `mlc-lab tune-model MLP --budget 5m` runs

The budget is shared among the graph's distinct tunable kernels in proportion to their FLOPs (a kernel
gets at least an equal share of a tenth of the budget, so small ones are not starved), tuned one after
the other; time one kernel leaves unused goes to the next. Trials go to the tuning cache
(`mlc_lab.tuning.cache`), so a second run resumes: it adds trials to the same records.
"""

from __future__ import annotations

import math
import re
import threading
import time
from typing import Any

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.graph import Graph
from mlc_lab.tuning.database import TuningDatabase

_BUDGET = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?)\s*(s|sec|m|min|h)?\s*")
_UNIT_S = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
#: The longest budget accepted (a day): a typo like "500h" is an error, not a weekend of tuning.
MAX_BUDGET_S = 24 * 3600.0
#: Trials a kernel may get in one run at most (the budget normally ends it first).
MAX_TRIALS_PER_KERNEL = 10_000


class BadBudget(MlcLabError, ValueError):
    """A tuning budget that is not a positive duration like '90s', '5m' or '1h'."""


def parse_budget(budget: str | float | int) -> float:
    """Seconds of a budget: a number of seconds, or text '90s', '5m', '1.5h'; `BadBudget` otherwise."""
    if isinstance(budget, bool) or not isinstance(budget, str | int | float):
        raise BadBudget(f"tuning budget must be a duration like '90s', '5m' or '1h', not {type(budget).__name__}")
    if isinstance(budget, str):
        match = _BUDGET.fullmatch(budget)
        if match is None:
            raise BadBudget(f"tuning budget {budget!r} is not a duration like '90s', '5m' or '1h'")
        seconds = float(match[1]) * _UNIT_S[match[2]]
    else:
        seconds = float(budget)
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadBudget(f"tuning budget {budget!r} must be more than 0 seconds")
    if seconds > MAX_BUDGET_S:
        raise BadBudget(f"tuning budget {budget!r} is longer than the limit of {MAX_BUDGET_S / 3600:.0f} h")
    return seconds


def shares(flops: list[float], total_s: float) -> list[float]:
    """Seconds per kernel: 10% of `total_s` split evenly, 90% in proportion to FLOPs."""
    if not flops:
        return []
    even = 0.1 * total_s / len(flops)
    weight = sum(flops)
    return [even + (0.9 * total_s * f / weight if weight else 0.9 * total_s / len(flops)) for f in flops]


def tune_graph(
    graph: Graph,
    budget_s: float,
    db: TuningDatabase | None = None,
    progress: bool = True,
    strategy: str = "model",
) -> dict[str, Any]:
    """Tune every distinct tunable kernel of `graph` (already through the compile passes) for `budget_s`
    seconds in all; returns key -> TuneResult. db: the log (default: the user's tuning cache)."""
    import tvm  # noqa: F401 - imported before the clock starts: its import is not tuning time

    from mlc_lab.tuning.apply import tasks_from_graph
    from mlc_lab.tuning.cache import tuning_cache, writable
    from mlc_lab.tuning.tuner import tune

    db = writable(db if db is not None else tuning_cache())
    tasks = sorted(tasks_from_graph(graph), key=lambda t: -t.flops)
    plan = shares([t.flops for t in tasks], budget_s)
    start = time.monotonic()
    results: dict[str, Any] = {}
    with _Progress(budget_s, start, progress) as bar:
        for k, task in enumerate(tasks):
            # cumulative: time the earlier kernels left unused goes to this one
            deadline = start + min(budget_s, sum(plan[: k + 1]))
            if time.monotonic() >= deadline:
                continue
            bar.say(f"kernel {k + 1}/{len(tasks)}: {task.name}")
            done = len(db.records(task.key))
            results[task.key] = tune(
                task, done + MAX_TRIALS_PER_KERNEL, db=db, progress=False, deadline=deadline, strategy=strategy
            )
    return results


class _Progress:
    """A tqdm bar of the budget's seconds, advanced by a timer thread (a kernel's tuning does not report)."""

    def __init__(self, total_s: float, start: float, enabled: bool) -> None:
        self.total_s, self.start, self.enabled = total_s, start, enabled
        self.bar = None
        self._stop = threading.Event()

    def __enter__(self) -> _Progress:
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=round(self.total_s), desc="tuning", unit="s",
                            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s {postfix}")
            threading.Thread(target=self._tick, daemon=True, name="mlc-lab-tuning-progress").start()
        return self

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self._update()

    def _update(self) -> None:
        if self.bar is not None:
            self.bar.n = min(round(self.total_s), round(time.monotonic() - self.start))
            self.bar.refresh()

    def say(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self.bar is not None:
            self._update()
            self.bar.close()
