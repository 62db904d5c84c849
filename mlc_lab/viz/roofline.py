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
) -> matplotlib.figure.Figure:
    """`points`: (label, FLOP/byte, measured GFLOP/s). Distance below the roof is what tuning can win."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
    else:
        fig = ax.figure
    intensities = [p[1] for p in points] + [machine.ridge_intensity]
    lo, hi = min(intensities) / 4, max(intensities) * 4
    x = np.logspace(np.log10(lo), np.log10(hi), 200)
    ax.loglog(x, machine.attainable_gflops(x), color="#333333", lw=2, label="roofline")
    ax.axvline(machine.ridge_intensity, color="#999999", ls=":", lw=1)
    ax.text(
        machine.ridge_intensity,
        machine.peak_gflops * 1.08,
        f" ridge {machine.ridge_intensity:.1f} FLOP/B",
        fontsize=8,
        color="#555555",
    )
    for label, intensity, gflops in points:
        ax.plot(intensity, gflops, "o", ms=6)
        ax.annotate(label, (intensity, gflops), textcoords="offset points", xytext=(5, -10), fontsize=8)
    ax.set_xlabel("arithmetic intensity (FLOP / byte of memory traffic)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(
        f"roofline: {machine.peak_gflops:.0f} GFLOP/s attainable peak, {machine.bandwidth_gbs:.1f} GB/s (stream), "
        f"{machine.threads} threads",
        fontsize=9,
    )
    ax.set_ylim(top=machine.peak_gflops * 1.5)
    return fig
