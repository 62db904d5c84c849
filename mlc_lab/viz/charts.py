"""Bar charts for before/after comparisons (kernels, traffic, run time) across models or pipelines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.figure


def grouped_bars(
    values: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
    titles: Sequence[str] | None = None,
    normalize_to: str | None = None,
) -> matplotlib.figure.Figure:
    """One panel per metric; in each, one group of bars per model and one bar per variant.

    `values[variant][f"{model}/{metric}"]`: e.g. values["unfused"]["resnet18/kernels"] = 70.
    With `normalize_to="unfused"` every bar is shown relative to that variant (1.0 = unchanged).
    """
    import matplotlib.pyplot as plt

    variants = list(values)
    models = sorted({key.split("/")[0] for v in values.values() for key in v}, key=lambda m: m)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    width = 0.8 / len(variants)
    for ax, metric, title in zip(axes[0], metrics, titles or metrics):
        for k, variant in enumerate(variants):
            heights = []
            for model in models:
                v = values[variant].get(f"{model}/{metric}", np.nan)
                if normalize_to is not None:
                    v = v / values[normalize_to].get(f"{model}/{metric}", np.nan)
                heights.append(v)
            bars = ax.bar(np.arange(len(models)) + (k - (len(variants) - 1) / 2) * width, heights, width, label=variant)
            ax.bar_label(bars, fmt="%.2f" if normalize_to else "%.3g", fontsize=7)
        ax.set_xticks(np.arange(len(models)), models, fontsize=8)
        ax.set_title(title, fontsize=10)
        if normalize_to:
            ax.axhline(1.0, color="#888888", lw=0.8, ls="--")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
