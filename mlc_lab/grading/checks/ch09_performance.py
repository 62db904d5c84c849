"""Official checks for exercises/09_performance.md (measuring performance honestly)."""

from __future__ import annotations

import math

import numpy as np

from mlc_lab.grading.session import Grading, check, close


@check(points=2)
def check_geomean(g: Grading) -> None:
    """geomean(ratios): the geometric mean, the only mean under which 2x faster and 2x slower cancel."""
    fn = g.need("geomean")
    g.compare("geomean([2.0, 0.5])", lambda: float(fn([2.0, 0.5])), 1.0, close(1e-9))
    for _ in range(10):
        r = [float(v) for v in g.rng.uniform(0.1, 10, int(g.rng.integers(1, 12)))]
        want = float(np.exp(np.log(r).mean()))
        g.compare(f"geomean({np.round(r, 3).tolist()})", lambda r=r: float(fn(r)), want, close(1e-9))


@check(points=2)
def check_amdahl(g: Grading) -> None:
    """amdahl(fraction, speedup): whole-program speed-up when `fraction` of the time gets `speedup`x faster."""
    fn = g.need("amdahl")
    drawn = [(float(np.round(g.rng.uniform(0, 1), 3)), float(np.round(g.rng.uniform(1, 50), 2))) for _ in range(3)]
    for fraction, speedup in [(0.5, 2.0), (0.9, 10.0), (1.0, 4.0), (0.0, 100.0), (0.25, 1e9), *drawn]:
        want = 1 / ((1 - fraction) + fraction / speedup)
        g.compare(
            f"amdahl({fraction}, {speedup})",
            lambda fraction=fraction, speedup=speedup: float(fn(fraction, speedup)),
            want,
            lambda got, want: math.isclose(got, want, rel_tol=1e-9),
        )


@check(points=2, forbids=("mlc_lab.bench.interleaved_medians",))
def check_interleaved_timer(g: Grading) -> None:
    """interleaved(fns, rounds): times every function once per round, round-robin; returns name -> median."""
    g.need("interleaved")
    names = ["a", "b", "c", "d"][: int(g.rng.integers(2, 5))]
    rounds = int(g.rng.integers(3, 7))
    with g.case(f"interleaved({{{', '.join(names)}}}, rounds={rounds})") as case:
        answer = g.probe("interleaved_order", "interleaved", names, rounds)
        calls, result = list(answer["order"]), answer["result"]
        case.got = f"calls {calls}, result {result}"
        assert set(result) == set(names), f"expected a median for each of {names}; got keys {sorted(result)}"
        k = len(names)
        assert len(calls) >= k * rounds, (
            f"each function must run once per round: saw {len(calls)} calls for {rounds} rounds"
        )
        timed = calls[-k * rounds :]  # warm-up calls before the timed rounds are fine
        for r in range(rounds):
            chunk = timed[k * r : k * r + k]
            assert sorted(chunk) == sorted(names), (
                f"calls are not interleaved round by round: {calls} (each round should call {', '.join(names)} once)"
            )
        assert all(isinstance(v, float) and v >= 0 for v in result.values()), "medians must be non-negative floats"
