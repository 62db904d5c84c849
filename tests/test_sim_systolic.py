"""The systolic fold model against SCALE-Sim 3.0's stored reports, and against our own PE-level simulation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc_lab.sim.systolic import check_dataflow, conv_as_gemm, gemm_folds, gemm_folds_batch, load_scalesim_reference
from mlc_lab.sim.systolic_memory import fold_footprint, gemm_traffic
from mlc_lab.sim.systolic_pe import simulate_gemm_pe

REFERENCE = load_scalesim_reference()
CASES = REFERENCE["cases"]


def case_id(case: dict) -> str:
    r, c = case["array"]
    return f"{case['set']}-{case['name']}-{r}x{c}-{case['dataflow']}"


def case_mnk(case: dict) -> tuple[int, int, int]:
    layer = case["layer"]
    if case["kind"] == "gemm":
        return layer["M"], layer["N"], layer["K"]
    return conv_as_gemm(*(layer[k] for k in ("H", "W", "KH", "KW", "C", "F", "stride")))


def test_reference_covers_what_the_issue_asks_for():
    kinds = {c["kind"] for c in CASES}
    dataflows = {c["dataflow"] for c in CASES}
    arrays = {tuple(c["array"]) for c in CASES}
    assert kinds == {"gemm", "conv"} and dataflows == {"os", "ws", "is"}
    assert any(r != c for r, c in arrays), "needs a non-square array"
    smaller = [c for c in CASES if max(case_mnk(c)) < min(c["array"])]
    assert smaller, "needs a layer smaller than the array"
    assert all(c["stall_cycles"] == 0 for c in CASES)
    assert REFERENCE["scalesim_version"] == "3.0.0"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_compute_cycles_equal_scalesim(case):
    m, n, k = case_mnk(case)
    stats = gemm_folds(m, n, k, *case["array"], case["dataflow"])
    assert stats.compute_cycles == case["compute_cycles"]  # 0 cycles off
    assert stats.mapping_efficiency * 100 == pytest.approx(case["mapping_efficiency_pct"], rel=1e-12)
    assert stats.utilization * 100 == pytest.approx(case["overall_util_pct"], rel=1e-12)


def test_batch_model_equals_scalar_model():
    for df in ("os", "ws", "is"):
        cases = [c for c in CASES if c["dataflow"] == df and c["array"] == [8, 4]]
        mnk = np.array([case_mnk(c) for c in cases])
        batch = gemm_folds_batch(mnk[:, 0], mnk[:, 1], mnk[:, 2], 8, 4, df)
        assert list(batch["compute_cycles"]) == [c["compute_cycles"] for c in cases]


def test_conv_lowering_follows_scalesim_output_size():
    # (10 - 3) is odd: SCALE-Sim rounds the output height up, ceil((10 - 3 + 2) / 2) = 5
    assert conv_as_gemm(10, 8, 3, 3, 2, 4, 2) == (5 * 4, 4, 18)  # and ceil((8 - 3 + 2) / 2) = 4
    with pytest.raises(ValueError, match="larger than the input"):
        conv_as_gemm(2, 2, 3, 3, 1, 1)
    with pytest.raises(ValueError, match="STRIDE"):
        conv_as_gemm(8, 8, 3, 3, 1, 1, 0)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="dataflow"):
        check_dataflow("rs")
    with pytest.raises(ValueError, match="rows"):
        gemm_folds(4, 4, 4, 0, 4, "os")
    with pytest.raises(ValueError, match="K"):
        gemm_folds(4, 4, -1, 4, 4, "os")
    assert check_dataflow("Weight-Stationary") == "ws"


# -- our own PE-level simulation ------------------------------------------------------------------------
def _operands(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32)


@pytest.mark.parametrize("dataflow", ["os", "ws", "is"])
@pytest.mark.parametrize(("m", "n", "k", "rows", "cols"), [(3, 2, 5, 4, 4), (23, 19, 31, 8, 4), (16, 16, 16, 4, 16)])
def test_pe_simulation_matches_fold_model_and_numpy(m, n, k, rows, cols, dataflow):
    a, b = _operands(m, n, k)
    sim = simulate_gemm_pe(a, b, rows, cols, dataflow)
    model = gemm_folds(m, n, k, rows, cols, dataflow)
    np.testing.assert_allclose(sim.output, a @ b, rtol=1e-5, atol=1e-4)
    assert sim.fold_cycles == [model.fold_cycles] * model.folds
    assert sim.cycles - 1 == model.compute_cycles  # SCALE-Sim reports the last cycle's index
    assert sim.mapping_efficiency == pytest.approx(model.mapping_efficiency)
    assert sim.macs == m * n * k  # each real multiply-accumulate happened exactly once


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(1, 6),
    st.integers(1, 6),
    st.sampled_from(["os", "ws", "is"]),
)
def test_pe_simulation_matches_model_on_random_shapes(m, n, k, rows, cols, dataflow):
    a, b = _operands(m, n, k, seed=m * 1000 + n * 100 + k)
    sim = simulate_gemm_pe(a, b, rows, cols, dataflow)
    model = gemm_folds(m, n, k, rows, cols, dataflow)
    np.testing.assert_allclose(sim.output, a @ b, rtol=1e-5, atol=1e-4)
    assert sim.cycles == model.cycles
    assert sim.mapping_efficiency == pytest.approx(model.mapping_efficiency)


def test_pe_snapshots_show_the_wavefront():
    a, b = _operands(4, 4, 6)
    sim = simulate_gemm_pe(a, b, 4, 4, "os", record=100)
    assert len(sim.snapshots) == sim.cycles  # one fold of 6 + 4 + 4 - 2 = 12 cycles
    first, third = sim.snapshots[0], sim.snapshots[2]
    assert first.active.sum() == 1 and first.active[0, 0]  # only the corner PE works in cycle 0
    assert np.array_equal(third.active, np.add.outer(np.arange(4), np.arange(4)) <= 2)  # the anti-diagonal front
    assert sum(s.active.sum() for s in sim.snapshots) == 4 * 4 * 6


def test_pe_stationary_dataflows_spend_rows_cycles_loading():
    a, b = _operands(5, 3, 4)
    sim = simulate_gemm_pe(a, b, 4, 4, "ws", record=4)
    assert [s.phase for s in sim.snapshots] == ["load"] * 4
    assert not any(s.active.any() for s in sim.snapshots)


def test_pe_simulation_refuses_huge_runs():
    a, b = _operands(64, 64, 64)
    with pytest.raises(ValueError, match="max_cycles"):
        simulate_gemm_pe(a, b, 2, 2, "os", max_cycles=1000)
    with pytest.raises(ValueError, match="need a"):
        simulate_gemm_pe(a, b[:3], 2, 2)


# -- traffic ------------------------------------------------------------------------------------------
def test_traffic_follows_the_dataflow():
    big = {"ifmap": 10**9, "filter": 10**9, "ofmap": 10**9}
    os_ = gemm_traffic(gemm_folds(64, 48, 40, 16, 16, "os"), 64 * 40, big)
    assert (os_.sram_ifmap_reads, os_.sram_filter_reads, os_.sram_ofmap_writes) == (3 * 64 * 40, 4 * 40 * 48, 64 * 48)
    ws = gemm_traffic(gemm_folds(64, 48, 40, 16, 16, "ws"), 64 * 40, big)
    assert ws.sram_filter_reads == 40 * 48 and ws.sram_ofmap_writes == 3 * 64 * 48  # ceil(40 / 16) = 3 row folds
    # everything fits: each operand comes from DRAM once, the output goes back once
    assert ws.dram_words == 64 * 40 + 40 * 48 + 64 * 48
    small = {"ifmap": 100, "filter": 10**9, "ofmap": 100}
    spilled = gemm_traffic(gemm_folds(64, 48, 40, 16, 16, "ws"), 64 * 40, small)
    assert spilled.dram_ifmap_reads == 3 * 64 * 40  # re-streamed once per column fold
    assert spilled.dram_psum_spill == 2 * 2 * 64 * 48  # two extra row folds' partial sums out and back
    assert fold_footprint(gemm_folds(64, 48, 40, 16, 8, "ws")) == {"ifmap": 16, "filter": 16 * 8, "ofmap": 8}
    assert fold_footprint(gemm_folds(64, 48, 40, 16, 8, "os"))["ofmap"] == 16 * 8
