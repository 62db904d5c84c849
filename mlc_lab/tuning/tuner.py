"""The tuning loop: propose, measure, log, repeat; resumable from the log.

    result = tune(matmul_task(512, 512, 512), trials=64, db="matmul.jsonl")
    result.best_gflops, result.best_config, result.curve()

`tune_space` is the loop itself and knows nothing about TVM: give it any `SearchSpace` and any cost
function (config -> TrialResult) — seconds measured on the CPU, or cycles from a simulator — and
a key to log under. `tune` wraps it for a compiler task: the kernel's space, measured cost, the
task's key, and GFLOP/s from the task's FLOP count.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from mlc_lab.tuning.cost_model import Featurizer
from mlc_lab.tuning.database import Record, TuningDatabase
from mlc_lab.tuning.measure import CostFunction, TrialResult
from mlc_lab.tuning.space import Config, SearchSpace
from mlc_lab.tuning.strategies import SearchStrategy, make_strategy


@dataclass
class TuneResult:
    """Every trial of a run (resumed ones first), with the wall clock at which each finished."""

    key: str
    trials: list[TrialResult] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)  #: seconds since tuning started, per trial
    flops: float = 0.0  #: FLOPs of the kernel (0 when the cost is not seconds)
    resumed: int = 0  #: trials read back from the log instead of measured
    tuning_wall_s: float = 0.0

    @property
    def best(self) -> TrialResult | None:
        ok = [t for t in self.trials if t.ok]
        return min(ok, key=lambda t: t.cost) if ok else None

    @property
    def best_config(self) -> Config | None:
        return None if self.best is None else self.best.config

    @property
    def best_cost(self) -> float:
        return float("inf") if self.best is None else self.best.cost

    @property
    def best_gflops(self) -> float:
        return self.flops / self.best_cost / 1e9 if self.best is not None and self.flops else 0.0

    @property
    def failures(self) -> list[TrialResult]:
        return [t for t in self.trials if not t.ok]

    def curve(self) -> dict[str, list[float]]:
        """Best-so-far after each trial: the data of a tuning-curve plot."""
        best, out = float("inf"), {"trial": [], "wall_s": [], "best_cost": [], "best_gflops": []}
        for k, (t, w) in enumerate(zip(self.trials, self.wall), 1):
            best = min(best, t.cost) if t.ok else best
            out["trial"].append(k)
            out["wall_s"].append(w)
            out["best_cost"].append(best)
            out["best_gflops"].append(self.flops / best / 1e9 if self.flops and best < float("inf") else 0.0)
        return out

    @classmethod
    def from_records(cls, records: list[Record], flops: float = 0.0) -> TuneResult:
        """Rebuild a run from its log (to plot a stored run without tuning again)."""
        flops = flops or (records[0].flops if records else 0.0)
        result = cls(records[0].key if records else "", flops=flops)
        for r in records:
            result.trials.append(TrialResult(r.config, r.cost, r.error, r.build_s, r.measure_s))
            result.wall.append(r.wall_s)
        result.tuning_wall_s = max(result.wall, default=0.0)
        return result

    @property
    def mean_trial_s(self) -> float:
        measured = self.trials[self.resumed :]
        return sum(t.build_s + t.measure_s for t in measured) / max(1, len(measured))


def tune_space(
    space: SearchSpace,
    cost: CostFunction,
    trials: int,
    *,
    key: str,
    strategy: str | SearchStrategy = "model",
    db: TuningDatabase | str | os.PathLike[str] | None = None,
    task_name: str = "",
    target: str = "",
    flops: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    featurize: Featurizer | None = None,
) -> TuneResult:
    """Run until the log holds `trials` trials for `key` (so a rerun after a kill finishes the rest)."""
    if isinstance(db, str | os.PathLike):
        db = TuningDatabase(db)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy, space, seed, featurize)
    result = TuneResult(key, flops=flops)
    start = time.perf_counter()
    for record in db.records(key) if db is not None else []:
        old = TrialResult(record.config, record.cost, record.error, record.build_s, record.measure_s)
        strategy.observe(old)
        result.trials.append(old)
        result.wall.append(record.wall_s)
    offset = max(result.wall, default=0.0)  # a resumed session continues the wall-clock axis
    result.resumed = len(result.trials)
    bar = _progress(trials, result.resumed, task_name or key[:40], progress)
    while len(result.trials) < trials:
        try:
            config = strategy.propose()
        except StopIteration:  # a grid that ran out
            break
        trial = cost(config)
        strategy.observe(trial)
        result.trials.append(trial)
        result.wall.append(offset + time.perf_counter() - start)
        if db is not None:
            db.append(_record(trial, key, task_name, target, len(result.trials), strategy.name, result.wall[-1], flops))
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(_postfix(result))
    if bar is not None:
        bar.close()
    result.tuning_wall_s = time.perf_counter() - start
    return result


def _record(
    trial: TrialResult, key: str, task: str, target: str, number: int, strategy: str, wall_s: float, flops: float
) -> Record:
    return Record(
        key=key,
        config=trial.config,
        cost=trial.cost,
        error=trial.error,
        task=task,
        target=target,
        trial=number,
        strategy=strategy,
        build_s=round(trial.build_s, 4),
        measure_s=round(trial.measure_s, 4),
        wall_s=round(wall_s, 4),
        flops=flops,
    )


def _progress(total: int, done: int, label: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=min(done, total), desc=f"tuning {label}", unit="trial", leave=False)


def _postfix(result: TuneResult) -> str:
    fails = len(result.failures)
    if result.flops:
        return f"best {result.best_gflops:.1f} GFLOP/s, {fails} failed"
    return f"best {result.best_cost:.4g}, {fails} failed"


def tune(
    task,
    trials: int = 64,
    *,
    strategy: str | SearchStrategy = "model",
    db: TuningDatabase | str | os.PathLike[str] | None = None,
    seed: int = 0,
    progress: bool = True,
    target=None,
) -> TuneResult:
    """Tune one compiler task (`mlc_lab.tuning.task.Task`) on this CPU; see `tune_space`."""
    from mlc_lab.tuning.cost_model import featurizer_for
    from mlc_lab.tuning.measure import MeasuredCost
    from mlc_lab.tuning.space import space_for

    cost = MeasuredCost(task, target)
    space = space_for(cost.info)
    return tune_space(
        space,
        cost,
        trials,
        key=task.key,
        strategy=strategy,
        db=db,
        task_name=task.name,
        target=task.target,
        flops=task.flops,
        seed=seed,
        progress=progress,
        featurize=featurizer_for(cost.info),
    )
