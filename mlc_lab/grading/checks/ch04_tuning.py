"""Official checks for exercises/04_tuning.md (auto-tuning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_tile_splits(ns: dict[str, Any]) -> None:
    """tile_splits(extent, parts): every ordered way to write extent as a product of `parts` factors."""
    from mlc_lab.tuning.space import factorizations

    fn = need(ns, "tile_splits")
    for extent, parts in [(1, 1), (12, 2), (16, 3), (64, 4), (96, 3), (7, 2), (256, 2)]:
        got = sorted(tuple(int(f) for f in split) for split in fn(extent, parts))
        want = sorted(tuple(f) for f in factorizations(extent, parts))
        assert got == want, f"tile_splits({extent}, {parts}): {len(got)} splits, expected {len(want)}: e.g. {want[:3]}"


def _small_problem():
    from mlc_lab.tuning.accelerator import SystolicCost, analytical_cycles, systolic_space

    # calibrated: on this space 40 random trials land ~1.5x off the optimum, a hill climber ~1.1x
    space = systolic_space(96, 768, 192, rows=16, cols=16)
    cost = SystolicCost(96, 768, 192, rows=16, cols=16, model=analytical_cycles)
    best = min(cost(c).cost for c in space.grid())
    return space, cost, best


def check_hill_climb(ns: dict[str, Any]) -> None:
    """HillClimb: a SearchStrategy that mutates the best config so far; in 40 trials it must get within
    1.25x of the optimum of a systolic tiling space (plain random search does not)."""
    from mlc_lab.tuning.strategies import SearchStrategy
    from mlc_lab.tuning.tuner import tune_space

    cls = need(ns, "HillClimb")
    assert isinstance(cls, type) and issubclass(cls, SearchStrategy), "HillClimb must subclass SearchStrategy"
    space, cost, optimum = _small_problem()
    ratios = []
    for seed in range(5):
        strategy = cls(space, seed=seed)
        result = tune_space(space, cost, 40, key=f"exercise-{seed}", strategy=strategy, progress=False)
        for trial in result.trials:
            problem = space.violation(trial.config)
            assert problem is None, f"HillClimb proposed a config outside the space: {problem}"
        ratios.append(result.best_cost / optimum)
    assert float(np.median(ratios)) <= 1.25, (
        f"after 40 trials the best found is {np.median(ratios):.2f}x the optimum (median over 5 seeds); "
        "expected within 1.25x: are you mutating the best config so far?"
    )


def check_ridge(ns: dict[str, Any]) -> None:
    """fit_ridge(X, y, alpha) -> weights minimising |Xw - y|^2 + alpha |w|^2."""
    fn = need(ns, "fit_ridge")
    rng = np.random.default_rng(3)
    for n, d, alpha in [(50, 4, 0.0), (30, 10, 1.0), (200, 6, 0.1)]:
        x, y = rng.standard_normal((n, d)), rng.standard_normal(n)
        want = np.linalg.solve(x.T @ x + alpha * np.eye(d), x.T @ y)
        got = np.asarray(fn(x, y, alpha), dtype=float)
        assert got.shape == (d,), f"expected {d} weights, got shape {got.shape}"
        assert np.allclose(got, want, atol=1e-6), (
            f"n={n}, d={d}, alpha={alpha}: weights differ by {abs(got - want).max():.2e}"
        )
