"""Official checks for exercises/05_tuning.md (auto-tuning)."""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check

#: The library's own search strategies: a HillClimb that is one of them (renamed) is not an answer.
LIBRARY_STRATEGIES = tuple(
    f"mlc_lab.tuning.strategies.{n}"
    for n in ("SimulatedAnnealing", "GridSearch", "ModelBased", "RandomSearch", "make_strategy")
)


@check(points=2, forbids=("mlc_lab.tuning.space.factorizations",))
def check_tile_splits(g: Grading) -> None:
    """tile_splits(extent, parts): every ordered way to write extent as a product of `parts` factors."""
    from mlc_lab.tuning.space import factorizations

    fn = g.need("tile_splits")
    drawn = [(int(g.rng.choice([24, 36, 48, 60, 72, 128])), int(g.rng.integers(2, 4))) for _ in range(2)]
    for extent, parts in [(1, 1), (12, 2), (16, 3), (64, 4), (96, 3), (7, 2), (256, 2), *drawn]:
        want = sorted(tuple(f) for f in factorizations(extent, parts))
        g.compare(
            f"tile_splits({extent}, {parts})",
            lambda extent=extent, parts=parts: sorted(tuple(int(f) for f in split) for split in fn(extent, parts)),
            want,
        )


#: calibrated: on this space 40 random trials land ~1.5x off the optimum, a hill climber ~1.1x
PROBLEM = (96, 768, 192, 16, 16)
TRIALS = 40


@check(points=3, forbids=LIBRARY_STRATEGIES)
def check_hill_climb(g: Grading) -> None:
    """HillClimb: a SearchStrategy that mutates the best config so far; in 40 trials it must get within
    1.25x of the optimum of a systolic tiling space (plain random search does not).

    The strategy runs in the student's process; the configs it tried are re-costed here."""
    from mlc_lab.tuning.accelerator import SystolicCost, analytical_cycles, systolic_space

    g.need("HillClimb")
    m, n, k, rows, cols = PROBLEM
    space = systolic_space(m, n, k, rows=rows, cols=cols)
    cost = SystolicCost(m, n, k, rows=rows, cols=cols, model=analytical_cycles)
    optimum = min(cost(c).cost for c in space.grid())
    with g.case(f"median over 5 seeds of best/optimum after {TRIALS} trials on systolic_space{PROBLEM}") as case:
        ratios = []
        for seed in range(5):
            configs = g.probe("tune", "HillClimb", list(PROBLEM), seed, TRIALS)
            count = len(configs) if isinstance(configs, list) else configs
            assert isinstance(configs, list) and 0 < len(configs) <= TRIALS, (
                f"expected up to {TRIALS} trials, the tuner recorded {count}"
            )
            for config in configs:
                assert isinstance(config, dict), f"a trial's config is a {type(config).__name__}, not a dict"
                problem = space.violation(config)
                assert problem is None, f"HillClimb proposed a config outside the space: {problem}"
            ratios.append(min(cost(c).cost for c in configs) / optimum)
        median = float(np.median(ratios))
        case.got, case.expected = f"{median:.2f}x", "<= 1.25x"
        assert median <= 1.25, (
            f"after {TRIALS} trials the best found is {median:.2f}x the optimum (median over 5 seeds); "
            "expected within 1.25x: are you mutating the best config so far?"
        )


@check(points=2, forbids=("mlc_lab.tuning.cost_model.LinearModel",))
def check_ridge(g: Grading) -> None:
    """fit_ridge(X, y, alpha) -> weights minimising |Xw - y|^2 + alpha |w|^2."""
    from mlc_lab.grading.session import close

    fn = g.need("fit_ridge")
    for n, d, alpha in [
        (50, 4, 0.0),
        (30, 10, 1.0),
        (200, 6, 0.1),
        (int(g.rng.integers(20, 80)), 5, float(g.rng.uniform(0.1, 3))),
    ]:
        x, y = g.rng.standard_normal((n, d)), g.rng.standard_normal(n)
        want = np.linalg.solve(x.T @ x + alpha * np.eye(d), x.T @ y)
        g.compare(
            f"fit_ridge(X: {n}x{d}, y, alpha={alpha:.3g})",
            lambda x=x, y=y, alpha=alpha: np.asarray(fn(x, y, alpha), dtype=float),
            want,
            close(rtol=1e-6, atol=1e-6),
        )
