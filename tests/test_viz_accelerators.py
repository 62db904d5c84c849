"""The chapter's accelerator plots draw the numbers the simulators compute."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from mlc_lab import zoo
from mlc_lab.backends.custom import SystolicArrayBackend
from mlc_lab.backends.custom.lowering import graph_gemms
from mlc_lab.sim.systolic import gemm_folds, utilization_sweep
from mlc_lab.sim.systolic_pe import simulate_gemm_pe
from mlc_lab.viz import plot_pe_snapshots, plot_systolic_utilization

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def resnet():
    return zoo.load("resnet18").graph()


def test_utilization_sweep_is_the_mac_weighted_model(resnet):
    gemms = graph_gemms(resnet)
    assert len(gemms) == 21
    sweep = utilization_sweep(gemms, (8, 64))
    macs = sum(m * n * k for m, n, k in gemms)
    cycles = sum(gemm_folds(m, n, k, 64, 64, "ws").compute_cycles for m, n, k in gemms)
    assert sweep["ws"][1] == pytest.approx(macs / (cycles * 64 * 64))
    for df in ("os", "ws", "is"):  # a small network cannot fill a big array
        assert sweep[df][0] > sweep[df][1]


def test_utilization_plot_has_one_line_per_dataflow(resnet):
    sizes = (4, 16, 64, 256)
    fig = plot_systolic_utilization(resnet, sizes=sizes)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 3
    expected = utilization_sweep(graph_gemms(resnet), sizes)
    for line, df in zip(lines, ("os", "ws", "is")):
        np.testing.assert_allclose(line.get_ydata(), expected[df] * 100)
    assert "resnet18" in fig.axes[0].get_title()


def test_layer_plot_and_pe_snapshots(resnet):
    program = SystolicArrayBackend(rows=16, cols=16).compile(resnet)
    fig = program.draw()
    assert len(fig.axes[0].patches) == 21  # one bar per GEMM layer
    rng = np.random.default_rng(0)
    result = simulate_gemm_pe(rng.random((4, 5)), rng.random((5, 4)), 4, 4, "os", record=12)
    fig = plot_pe_snapshots(result, cycles=[0, 3, 6])
    assert [ax.get_title() for ax in fig.axes[:3]] == ["cycle 0 (compute)", "cycle 3 (compute)", "cycle 6 (compute)"]
    with pytest.raises(ValueError, match="snapshots"):
        plot_pe_snapshots(simulate_gemm_pe(rng.random((2, 2)), rng.random((2, 2)), 2, 2))
