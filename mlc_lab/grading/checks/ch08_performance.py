"""Official checks for exercises/08_performance.md (measuring performance honestly)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_geomean(ns: dict[str, Any]) -> None:
    """geomean(ratios): the geometric mean, the only mean under which 2x faster and 2x slower cancel."""
    fn = need(ns, "geomean")
    assert math.isclose(fn([2.0, 0.5]), 1.0, rel_tol=1e-9), "geomean([2, 0.5]) must be 1: the speed-ups cancel"
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = rng.uniform(0.1, 10, rng.integers(1, 12))
        want = float(np.exp(np.log(r).mean()))
        got = float(fn(list(r)))
        assert math.isclose(got, want, rel_tol=1e-9), f"geomean({np.round(r, 3).tolist()}) = {got}, expected {want}"


def check_amdahl(ns: dict[str, Any]) -> None:
    """amdahl(fraction, speedup): whole-program speed-up when `fraction` of the time gets `speedup`x faster."""
    fn = need(ns, "amdahl")
    for fraction, speedup in [(0.5, 2.0), (0.9, 10.0), (1.0, 4.0), (0.0, 100.0), (0.25, 1e9)]:
        want = 1 / ((1 - fraction) + fraction / speedup)
        got = float(fn(fraction, speedup))
        assert math.isclose(got, want, rel_tol=1e-9), f"amdahl({fraction}, {speedup}) = {got}, expected {want:.6g}"


def check_interleaved_timer(ns: dict[str, Any]) -> None:
    """interleaved(fns, rounds): times every function once per round, round-robin; returns name -> median."""
    fn = need(ns, "interleaved")
    order: list[str] = []
    fns = {name: (lambda name=name: order.append(name)) for name in ("a", "b", "c")}
    result = fn(fns, 5)
    assert set(result) == {"a", "b", "c"}, f"expected a median for each of a, b, c; got keys {sorted(result)}"
    calls = [x for x in order]
    assert len(calls) >= 15, f"each function must run at least once per round: saw {len(calls)} calls for 5 rounds"
    last_rounds = calls[-15:]
    for k in range(5):
        chunk = last_rounds[3 * k : 3 * k + 3]
        assert sorted(chunk) == ["a", "b", "c"], (
            f"calls are not interleaved round by round: {calls} (each round should call a, b and c once)"
        )
    assert all(isinstance(v, float) and v >= 0 for v in result.values()), "medians must be non-negative floats"
