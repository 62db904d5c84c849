"""The tuning loop: propose, measure, log, repeat; resumable from the log.

    result = tune(matmul_task(512, 512, 512), trials=64, db="matmul.jsonl")
    result.best_gflops, result.best_config, result.curve()

`tune_space` is the loop itself and knows nothing about TVM: give it any `SearchSpace` and any cost
function (config -> TrialResult) — seconds measured on the CPU, or cycles from a simulator — and
a key to log under. `tune` wraps it for a compiler task: the kernel's space, measured cost, the
task's key, and GFLOP/s from the task's FLOP count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import os
import time
import warnings
from dataclasses import dataclass, field

from mlc_lab.tuning.coordination import SharedLog
from mlc_lab.tuning.cost_model import Featurizer
from mlc_lab.tuning.database import Problem, Record, TuningDatabase, TuningLogWarning, summarize_problems
from mlc_lab.tuning.measure import CostFunction, TrialResult
from mlc_lab.tuning.space import Config, SearchSpace
from mlc_lab.tuning.strategies import SearchStrategy, config_id, make_strategy


@dataclass
class TuneResult:
    """Every trial of a run (resumed ones first), with the wall clock at which each finished."""

    key: str
    trials: list[TrialResult] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)  #: seconds since tuning started, per trial
    flops: float = 0.0  #: FLOPs of the kernel (0 when the cost is not seconds)
    resumed: int = 0  #: trials read back from the log when the run started
    measured: int = 0  #: trials this run measured (the rest: resumed, or logged meanwhile by another tuner)
    tuning_wall_s: float = 0.0
    invalid: list[Problem] = field(default_factory=list)  #: log lines skipped as invalid records, and why
    own_trials: list[TrialResult] = field(default_factory=list, repr=False)  #: the trials this run measured

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
        measured = self.own_trials if self.own_trials else self.trials[self.resumed :]
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
    deadline: float | None = None,
) -> TuneResult:
    """Run until the log holds `trials` trials for `key` (so a rerun after a kill finishes the rest).

    deadline: a `time.monotonic()` value after which no new trial starts (a time budget; the trial in
    flight finishes and is logged).

    The log is read back checked against `space`: invalid records are reported (`TuneResult.invalid` and a
    `TuningLogWarning`) and never observed, so they are never the best nor cost-model data. Tuners may share
    a log (see `coordination`): each sees the others' trials before it proposes, no config is measured twice,
    and each waits for the others' trials in flight, so all end with the same trials and the same best.
    A cost that is not a finite number > 0 is logged as a failed trial with that reason.
    """
    if isinstance(db, str | os.PathLike):
        db = TuningDatabase(db)
    if isinstance(strategy, str):
        strategy = make_strategy(strategy, space, seed, featurize)
    shared = SharedLog(db) if db is not None else None
    loop = _Loop(space, strategy, TuneResult(key, flops=flops), shared)
    bar = None
    try:
        loop.read_log()
        if shared is not None and shared.problems:
            warnings.warn(f"tuning log {summarize_problems(shared.problems, db.path)}", TuningLogWarning, stacklevel=2)
        loop.result.resumed = len(loop.result.trials)
        bar = _progress(trials, loop.result.resumed, task_name or key[:40], progress)
        offset = max(loop.result.wall, default=0.0)  # a resumed session continues the wall-clock axis
        start = time.perf_counter()
        while (deadline is None or time.monotonic() < deadline) and (config := loop.next_config(trials)) is not None:
            trial = _checked(cost(config))
            wall = offset + time.perf_counter() - start
            record = _record(trial, key, task_name, target, 0, strategy.name, wall, flops)
            loop.log(trial, record)
            if bar is not None:
                bar.update(len(loop.result.trials) - bar.n)
                bar.set_postfix_str(_postfix(loop.result))
        loop.read_log()  # the last trial logged (a deadline ends the loop before it is read back)
        loop.result.tuning_wall_s = time.perf_counter() - start
    finally:
        if shared is not None:
            shared.release({key: loop.measured})
        if bar is not None:
            bar.close()
    if shared is not None:
        shared.finish_reading(key, space)
        loop.result.invalid = list(shared.problems)
    return loop.result


#: How many proposals a strategy gets to find a config nobody measured or claimed before the space counts as spent.
PROPOSE_TRIES = 32
#: Seconds between looks at the log while another tuner's last trials are in flight.
POLL_S = 0.05


class _Loop:
    """The state of one `tune_space` run: what was observed (from the log or measured here), what is claimed."""

    def __init__(self, space: SearchSpace, strategy: SearchStrategy, result: TuneResult, shared: SharedLog | None):
        self.space, self.strategy, self.result, self.shared = space, strategy, result, shared
        self.measured: set[str] = set()  #: ids of the configs in result.trials

    def _held(self):
        return self.shared.locked() if self.shared is not None else contextlib.nullcontext()

    def read_log(self) -> None:
        """Observe the records of this key that reached the log since the last look (call under the lock)."""
        if self.shared is None:
            return
        with self._held():
            self._absorb_new()

    def _absorb_new(self) -> None:
        for r in self.shared.read_new(self.result.key, self.space).records:
            self._observe(TrialResult(r.config, r.cost, r.error, r.build_s, r.measure_s), r.wall_s)

    def _observe(self, trial: TrialResult, wall: float) -> None:
        self.strategy.observe(trial)
        self.result.trials.append(trial)
        self.result.wall.append(wall)
        self.measured.add(config_id(trial.config))

    def next_config(self, trials: int) -> Config | None:
        """A config nobody measured or claimed, claimed for this tuner; None when the log will hold `trials`."""
        while True:
            with self._held():
                pending: set[str] = set()
                if self.shared is not None:
                    self._absorb_new()
                    pending = self.shared.pending(self.result.key, self.measured)
                    if isinstance(getattr(self.strategy, "seen", None), set):
                        self.strategy.seen |= pending  # so it proposes none of them
                config = None
                if len(self.result.trials) + len(pending) < trials:
                    config = self._propose(self.measured | pending)
                if config is not None and self.shared is not None:
                    self.shared.claim(self.result.key, config)
            if config is not None or not pending:
                return config
            time.sleep(POLL_S)  # the others' last trials are in flight: wait for them, so all agree on the best

    def _propose(self, taken: set[str]) -> Config | None:
        """The strategy's next config; with a log, one nobody measured or claimed (None: the space is spent).

        Without a log a repeat is the strategy's own choice and is measured, as it asked."""
        for _ in range(PROPOSE_TRIES if self.shared is not None else 1):
            try:
                config = self.strategy.propose()
            except StopIteration:  # a grid that ran out
                return None
            if self.shared is None or config_id(config) not in taken:
                return config
        return None

    def log(self, trial: TrialResult, record: Record) -> None:
        """Append this tuner's trial; with a log it is observed when read back, in the log's order."""
        self.result.measured += 1
        self.result.own_trials.append(trial)
        if self.shared is None:
            record.trial = len(self.result.trials) + 1
            self._observe(trial, record.wall_s)
            return
        with self._held():
            self._absorb_new()
            record.trial = len(self.result.trials) + 1
            self.shared.db.append(record)


def _checked(trial: TrialResult) -> TrialResult:
    """A successful trial must have a finite positive cost (log, cost models and GFLOP/s all divide by it)."""
    cost = trial.cost
    if trial.error is not None:
        return trial
    if not isinstance(cost, numbers.Real) or isinstance(cost, bool) or not math.isfinite(cost) or cost <= 0:
        return dataclasses.replace(trial, cost=float("inf"), error=f"cost: {cost!r} is not a finite number > 0")
    return trial if type(cost) is float else dataclasses.replace(trial, cost=float(cost))  # NumPy scalars: JSON


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
    deadline: float | None = None,
    cost=None,
) -> TuneResult:
    """Tune one compiler task (`mlc_lab.tuning.task.Task`) on this CPU; see `tune_space`.

    cost: how configs are measured (default: `MeasuredCost` here; `mlc_lab.tuning.rpc.RemoteCost` on boards)."""
    from mlc_lab.tuning.cost_model import featurizer_for
    from mlc_lab.tuning.measure import MeasuredCost
    from mlc_lab.tuning.space import space_for, target_isa

    cost = cost if cost is not None else MeasuredCost(task, target)
    space = space_for(cost.info, isa=target_isa(getattr(cost, "target", None)))  # starts at the default point
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
        deadline=deadline,
    )
