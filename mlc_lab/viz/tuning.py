"""Tuning curves: best GFLOP/s found so far, against trials and against wall-clock time.

Two panels because the two axes answer different questions: per trial, which search is smarter;
per second, which is cheaper (MetaSchedule spends time on its own search and model between trials).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import matplotlib.figure

    from mlc_lab.tuning.tuner import TuneResult


def plot_tuning_curves(
    runs: Mapping[str, TuneResult],
    references: Mapping[str, float] | None = None,
    title: str = "",
) -> matplotlib.figure.Figure:
    """`runs`: label -> TuneResult; `references`: label -> GFLOP/s drawn as horizontal lines (e.g. NumPy)."""
    import matplotlib.pyplot as plt

    fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for label, run in runs.items():
        curve = run.curve()
        by_trial.step(curve["trial"], curve["best_gflops"], where="post", label=label)
        by_time.step(curve["wall_s"], curve["best_gflops"], where="post", label=label)
    for label, gflops in (references or {}).items():
        for ax in (by_trial, by_time):
            ax.axhline(gflops, ls="--", lw=1, color="#777777")
        by_trial.text(1, gflops * 1.02, label, fontsize=8, color="#555555")
    by_trial.set_xlabel("trials")
    by_time.set_xlabel("wall time (s)")
    by_trial.set_ylabel("best GFLOP/s so far")
    by_trial.legend(fontsize=8, loc="lower right")
    for ax in (by_trial, by_time):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
