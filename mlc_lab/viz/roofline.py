"""The roofline: attainable GFLOP/s against arithmetic intensity, with measured kernels as points."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.figure

    from mlc_lab.tuning.hardware import MachineModel


def draw_roofline(
    machine: MachineModel,
    points: Sequence[tuple[str, float, float]] = (),
    ax=None,
    derived_peak_gflops: float | None = None,
) -> matplotlib.figure.Figure:
    """`points`: (label, FLOP/byte, measured GFLOP/s). Distance below the roof is what tuning can win.

    Both roofs are drawn and named on the plot: the memory slope (bandwidth x intensity) and the
    measured compute peak, plus a dashed derived peak (`derived_peak_gflops`, from vector width x
    FMA units x clock) when given. Points are numbered and named in a legend beside the axes, so
    kernels at the same intensity (every step of one matmul) never print their labels over each other.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 4.2))
    else:
        fig = ax.figure
    intensities = [p[1] for p in points] + [machine.ridge_intensity]
    lo, hi = min(intensities) / 4, max(intensities) * 4
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    roofs = f"memory roof {machine.bandwidth_gbs:.1f} GB/s, compute roof {machine.peak_gflops:.0f} GFLOP/s (measured)"
    ax.loglog(x, machine.attainable_gflops(x), color="#333333", lw=2, label=roofs)
    ax.axvline(machine.ridge_intensity, color="#999999", ls=":", lw=1)
    ax.text(
        machine.ridge_intensity,
        machine.peak_gflops * 0.6,
        f" ridge {machine.ridge_intensity:.1f} FLOP/B",
        fontsize=8,
        color="#555555",
    )
    top = machine.peak_gflops
    if derived_peak_gflops is not None:
        derived = f"compute roof {derived_peak_gflops:.0f} GFLOP/s (derived)"
        ax.axhline(derived_peak_gflops, color="#aa3333", ls="--", lw=1, label=derived)
        top = max(top, derived_peak_gflops)
    markers = "osD^vP*Xh<>"
    for k, (label, intensity, gflops) in enumerate(points, start=1):
        ax.plot(intensity, gflops, markers[(k - 1) % len(markers)], ms=6, label=f"{k}. {label}")
        # numbers staggered sideways: points of one kernel share an intensity and may sit close in GFLOP/s
        offset = (6 + 9 * ((k - 1) % 3), -3)
        ax.annotate(str(k), (intensity, gflops), textcoords="offset points", xytext=offset, fontsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.set_xlabel("arithmetic intensity (FLOP / byte of memory traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(
        f"roofline: {machine.peak_gflops:.0f} GFLOP/s attainable peak, {machine.bandwidth_gbs:.1f} GB/s (stream), "
        f"{machine.threads} threads",
        fontsize=9,
    )
    ax.set_ylim(top=top * 1.5)
    fig.subplots_adjust(left=0.08, right=0.6, bottom=0.13, top=0.9)  # room on the right for the legend
    return fig
