"""Search strategies: which config to try next, given what was measured so far.

Every strategy has two methods: `propose() -> config` and `observe(result)`. The tuner alternates
them, so a strategy never measures anything itself and any cost function (seconds on this CPU,
cycles of a simulator) plugs in. Resuming replays the log through `observe`.

- `RandomSearch`: uniform samples, never the same config twice. The baseline every other must beat.
- `GridSearch`: every config in order; exhaustive, so only for small spaces.
- `SimulatedAnnealing`: a walk through neighbouring configs (one knob changed), accepting a slower
  one with probability exp(-(slowdown) / temperature) so it can leave local minima; cooling over time.
- `ModelBased`: fit a cost model on what was measured, score many unmeasured candidates (random
  ones and mutations of the best so far), measure the best-predicted few, refit. Mostly exploits,
  with a fraction of random picks (epsilon) to keep the model honest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np

from mlc_lab.tuning.cost_model import CostModel
from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.space import Config, SearchSpace


def config_id(config: Config) -> str:
    return json.dumps(config, sort_keys=True)


class SearchStrategy:
    """Base: remembers what was seen, so no strategy proposes a measured config again."""

    name = "base"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.rng = np.random.default_rng(seed)
        self.seen: set[str] = set()
        self.history: list[TrialResult] = []

    def propose(self) -> Config:
        raise NotImplementedError

    def observe(self, result: TrialResult) -> None:
        self.seen.add(config_id(result.config))
        self.history.append(result)

    def _fresh(self, make: Callable[[], Config], tries: int = 200) -> Config:
        """A config not measured yet (falls back to a repeat when the space is nearly exhausted); the
        space's `start` configs (the compiler's default point) come first."""
        for config in getattr(self.space, "start", ()):
            if config_id(config) not in self.seen:
                return config
        config = make()
        for _ in range(tries):
            if config_id(config) not in self.seen:
                break
            config = make()
        return config


class RandomSearch(SearchStrategy):
    name = "random"

    def propose(self) -> Config:
        return self._fresh(lambda: self.space.sample(self.rng))


class GridSearch(SearchStrategy):
    name = "grid"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self._grid = space.grid()

    def propose(self) -> Config:
        for config in self._grid:
            if config_id(config) not in self.seen:
                return config
        raise StopIteration("grid exhausted")


class SimulatedAnnealing(SearchStrategy):
    name = "annealing"

    def __init__(self, space: SearchSpace, seed: int = 0, temperature: float = 0.3, cooling: float = 0.97) -> None:
        super().__init__(space, seed)
        self.temperature, self.cooling = temperature, cooling
        self.current: TrialResult | None = None

    def propose(self) -> Config:
        if self.current is None:
            return self._fresh(lambda: self.space.sample(self.rng))
        return self._fresh(lambda: self.space.mutate(self.current.config, self.rng, changes=1 + self.rng.integers(2)))

    def observe(self, result: TrialResult) -> None:
        super().observe(result)
        if not result.ok:
            return
        if self.current is None or result.cost <= self.current.cost:
            self.current = result
        else:  # accept a slower config with probability exp(-log slowdown / T)
            slowdown = math.log(result.cost / self.current.cost)
            if self.rng.random() < math.exp(-slowdown / max(self.temperature, 1e-6)):
                self.current = result
        self.temperature *= self.cooling


class ModelBased(SearchStrategy):
    name = "model"

    def __init__(
        self,
        space: SearchSpace,
        model: CostModel,
        seed: int = 0,
        warmup: int = 8,
        batch: int = 8,
        candidates: int = 512,
        epsilon: float = 0.2,
    ) -> None:
        super().__init__(space, seed)
        self.model, self.warmup, self.batch = model, warmup, batch
        self.candidates, self.epsilon = candidates, epsilon
        self.queue: list[Config] = []

    def propose(self) -> Config:
        ok = [r for r in self.history if r.ok]
        if len(ok) < self.warmup:
            return self._fresh(lambda: self.space.sample(self.rng))
        if not self.queue:
            self.model.fit([r.config for r in ok], [r.cost for r in ok])
            self.queue = self._next_batch(ok)
        return self.queue.pop(0)

    def _next_batch(self, ok: list[TrialResult]) -> list[Config]:
        best = sorted(ok, key=lambda r: r.cost)[:8]
        pool: dict[str, Config] = {}
        for k in range(self.candidates):
            if k % 2:
                parent = best[self.rng.integers(len(best))].config
                c = self.space.mutate(parent, self.rng, changes=1 + self.rng.integers(3))
            else:
                c = self.space.sample(self.rng)
            if config_id(c) not in self.seen:
                pool[config_id(c)] = c
        configs = list(pool.values())
        if not configs:
            return [self._fresh(lambda: self.space.sample(self.rng))]
        order = np.argsort(self.model.predict(configs))
        picks = [configs[i] for i in order[: self.batch]]
        for k in range(len(picks)):  # epsilon-greedy: some random candidates keep the model calibrated
            if self.rng.random() < self.epsilon:
                picks[k] = configs[self.rng.integers(len(configs))]
        unique = {config_id(c): c for c in picks}
        return list(unique.values())


STRATEGIES = ("random", "grid", "annealing", "model", "model-linear")


def make_strategy(name: str, space: SearchSpace, seed: int = 0, featurize=None) -> SearchStrategy:
    """A strategy by name; "model" uses XGBoost, "model-linear" the interpretable ridge model."""
    from mlc_lab.tuning.cost_model import GradientBoostingModel, LinearModel, generic_features

    featurize = featurize or generic_features
    if name == "random":
        return RandomSearch(space, seed)
    if name == "grid":
        return GridSearch(space, seed)
    if name == "annealing":
        return SimulatedAnnealing(space, seed)
    if name == "model":
        return ModelBased(space, GradientBoostingModel(featurize, seed=seed), seed)
    if name == "model-linear":
        strategy = ModelBased(space, LinearModel(featurize), seed)
        strategy.name = "model-linear"
        return strategy
    raise ValueError(f"unknown strategy {name!r}: one of {', '.join(STRATEGIES)}")
