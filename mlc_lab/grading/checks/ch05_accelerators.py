"""Official checks for exercises/05_accelerators.md (custom accelerators)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_fold_count(ns: dict[str, Any]) -> None:
    """fold_count(m, n, k, rows, cols, dataflow) = number of array-sized tiles the GEMM is cut into."""
    from mlc_lab.sim.systolic import gemm_folds

    fn = need(ns, "fold_count")
    rng = np.random.default_rng(5)
    for _ in range(300):
        m, n, k = (int(v) for v in rng.integers(1, 300, 3))
        rows, cols = (int(v) for v in rng.choice([1, 2, 4, 8, 16, 32, 128], 2))
        df = str(rng.choice(["os", "ws", "is"]))
        want = gemm_folds(m, n, k, rows, cols, df).folds
        got = int(fn(m, n, k, rows, cols, df))
        assert got == want, f"fold_count(M={m}, N={n}, K={k}, {rows}x{cols}, {df!r}) = {got}, expected {want}"


def check_os_cycles_match_scalesim(ns: dict[str, Any]) -> None:
    """os_compute_cycles(m, n, k, rows, cols) equals SCALE-Sim 3.0's output-stationary compute cycles."""
    from mlc_lab.sim.systolic import conv_as_gemm, load_scalesim_reference

    fn = need(ns, "os_compute_cycles")
    cases = [c for c in load_scalesim_reference()["cases"] if c["dataflow"] == "os"]
    assert cases, "no stored SCALE-Sim output-stationary cases"
    for case in cases:
        layer = case["layer"]
        if case["kind"] == "gemm":
            m, n, k = layer["M"], layer["N"], layer["K"]
        else:
            dims = (layer[key] for key in ("H", "W", "KH", "KW", "C", "F", "stride"))
            m, n, k = conv_as_gemm(*dims)
        rows, cols = case["array"]
        got = int(fn(m, n, k, rows, cols))
        assert got == case["compute_cycles"], (
            f"{case['name']} (M={m}, N={n}, K={k}) on {rows}x{cols}: you computed {got}, "
            f"SCALE-Sim reports {case['compute_cycles']}"
        )


def check_allocate_cores(ns: dict[str, Any]) -> None:
    """allocate_cores(work, min_cores, total): integer cores per stage, each >= its minimum, summing to at
    most `total`, with the pipeline's slowest stage (max work/cores) within 2% of the best possible."""
    from mlc_lab.backends.custom.wafer import water_fill

    fn = need(ns, "allocate_cores")
    rng = np.random.default_rng(7)
    for trial in range(40):
        stages = int(rng.integers(2, 25))
        work = rng.integers(1_000, 5_000_000, stages).astype(float)
        lo = rng.integers(1, 50, stages)
        total = int(lo.sum() + rng.integers(0, 200_000))
        got = np.asarray(fn(list(work), list(lo), total), dtype=np.int64)
        assert got.shape == (stages,), f"expected {stages} core counts, got shape {got.shape}"
        assert (got >= lo).all(), f"trial {trial}: a stage got fewer cores than its minimum (weights must fit)"
        assert got.sum() <= total, f"trial {trial}: {got.sum()} cores used, only {total} exist"
        best = water_fill(work, lo, np.full(stages, total), total)
        ours, ref = (work / got).max(), (work / best).max()
        assert ours <= ref * 1.02, f"trial {trial}: slowest stage takes {ours:,.0f} work/core, the best is {ref:,.0f}"
