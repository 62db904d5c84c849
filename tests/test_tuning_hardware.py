"""The machine model: measurements are real and positive; the roofline arithmetic is right."""

import matplotlib
import numpy as np

from mlc_lab.tuning import MachineModel, measure_bandwidth_gbs, measure_peak_gflops
from mlc_lab.tuning.hardware import measure_tvm_matmul_gflops
from mlc_lab.viz.roofline import draw_roofline

matplotlib.use("Agg")


def test_roofline_arithmetic_and_round_trip(tmp_path):
    m = MachineModel(peak_gflops=100.0, bandwidth_gbs=20.0, threads=2, cpu="test")
    assert m.ridge_intensity == 5.0
    np.testing.assert_allclose(m.attainable_gflops([0.5, 5.0, 50.0]), [10.0, 100.0, 100.0])
    m.save(tmp_path / "machine.json")
    assert MachineModel.load(tmp_path / "machine.json") == m
    fig = draw_roofline(m, [("relu", 0.125, 2.0), ("matmul", 40.0, 80.0)])
    # points are numbered on the plot and named in the legend (labels at one intensity used to overlap)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[-2:] == ["1. relu", "2. matmul"]


def test_measurements_are_plausible():
    # small sizes: this checks the kernels run and verify, not the machine's real numbers
    peak = measure_peak_gflops(n=256, repeat=3, with_tvm=False)
    micro = measure_tvm_matmul_gflops()  # raises if the micro-kernel's output were wrong
    bandwidth = measure_bandwidth_gbs(megabytes=16, repeat=3)
    assert 0.5 < peak < 20_000 and 0.5 < micro < 20_000
    assert 0.1 < bandwidth < 5_000
    assert isinstance(peak, float) and isinstance(bandwidth, float)
