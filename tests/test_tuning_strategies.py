"""Strategies and cost models on a synthetic cost: the tuner's loop needs no TVM (pluggable cost)."""

import math

import numpy as np
import pytest

from mlc_lab.tuning.cost_model import GradientBoostingModel, LinearModel
from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.space import SearchSpace, factorizations
from mlc_lab.tuning.tuner import tune_space


def systolic_like_space() -> SearchSpace:
    """Tile sizes and a dataflow for a 64x64x64 GEMM on an imaginary 8x8 array: a simulator's knobs."""
    return SearchSpace(
        {
            "tile_m": factorizations(64, 2),
            "tile_n": factorizations(64, 2),
            "tile_k": factorizations(64, 2),
            "dataflow": ["os", "ws", "is"],
            "double_buffer": [False, True],
        }
    )


def analytical_cycles(config) -> TrialResult:
    """A made-up but structured cost: best at 8x8 tiles, output-stationary, double-buffered."""
    m, n, k = config["tile_m"][1], config["tile_n"][1], config["tile_k"][1]
    cycles = 1000 * (abs(math.log2(m) - 3) + abs(math.log2(n) - 3) + 0.5 * abs(math.log2(k) - 4) + 1)
    cycles *= {"os": 1.0, "ws": 1.3, "is": 1.6}[config["dataflow"]]
    cycles *= 1.0 if config["double_buffer"] else 1.4
    return TrialResult(config, cycles)


OPTIMUM = 1000.0


# the linear model cannot express "best at 8, worse either side" (a V in log2 tile): it is the weak baseline
@pytest.mark.parametrize(
    "strategy, within", [("random", 3.0), ("annealing", 2.0), ("model", 2.0), ("model-linear", 4.0)]
)
def test_strategies_improve_over_trials(strategy, within):
    space = systolic_like_space()
    result = tune_space(space, analytical_cycles, 60, key="gemm", strategy=strategy, progress=False, seed=1)
    curve = result.curve()["best_cost"]
    assert all(a >= b for a, b in zip(curve, curve[1:]))  # best-so-far never gets worse
    assert curve[-1] < curve[4]
    assert curve[-1] <= within * OPTIMUM
    assert len({str(t.config) for t in result.trials}) == 60  # nothing measured twice


def test_guided_strategies_beat_random_on_average():
    space = systolic_like_space()

    def final(strategy, seed):
        return tune_space(space, analytical_cycles, 40, key="g", strategy=strategy, progress=False, seed=seed).best_cost

    random = np.median([final("random", s) for s in range(5)])
    for strategy in ("annealing", "model"):
        assert np.median([final(strategy, s) for s in range(5)]) <= random


def test_grid_search_finds_the_exact_optimum_of_a_small_space():
    space = systolic_like_space()
    result = tune_space(space, analytical_cycles, len(space) + 5, key="g", strategy="grid", progress=False)
    assert len(result.trials) == len(space)  # stops when the grid is exhausted
    assert result.best_cost == OPTIMUM


def test_linear_model_is_interpretable_and_boosting_ranks():
    space = systolic_like_space()
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(150)]
    seconds = [analytical_cycles(c).cost for c in configs]
    linear = LinearModel()
    linear.fit(configs, seconds)
    names = [name for name, _ in linear.explain(3)]
    assert any(n.startswith(("double_buffer", "dataflow")) for n in names)
    boosted = GradientBoostingModel()
    boosted.fit(configs[:100], seconds[:100])
    predicted = boosted.predict(configs[100:])
    rank = np.corrcoef(np.argsort(np.argsort(predicted)), np.argsort(np.argsort(seconds[100:])))[0, 1]
    assert rank > 0.7


def test_systolic_tiles_tuned_with_an_analytical_cycle_model():
    from mlc_lab.tuning.accelerator import SystolicCost, systolic_space

    space = systolic_space(64, 64, 64, rows=8, cols=8)
    cost = SystolicCost(64, 64, 64, rows=8, cols=8)
    optimum = min(cost(c).cost for c in space.grid())
    result = tune_space(space, cost, 80, key="gemm@8x8", strategy="model", progress=False)
    assert result.best_cost <= 1.25 * optimum
    assert result.best_cost < result.trials[0].cost or result.trials[0].cost == optimum


def test_systolic_simulator_as_the_cost():
    from mlc_lab.tuning.accelerator import SystolicCost, simulated_cycles, systolic_space

    space = systolic_space(128, 64, 64, rows=8, cols=8)
    cost = SystolicCost(128, 64, 64, rows=8, cols=8, model=simulated_cycles)
    optimum = min(cost(c).cost for c in space.grid())  # microseconds per config: the whole space is cheap here
    result = tune_space(space, cost, 60, key="gemm@sim8x8", strategy="annealing", progress=False)
    assert result.best.ok and result.best_cost <= 1.1 * optimum
