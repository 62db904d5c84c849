"""Pictures of memory: a buffer plan as rectangles in (time, address) space, and cache miss bars."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure

    from mlc_lab.passes.memory import MemoryPlan


def draw_memory_plan(plan: MemoryPlan, ax: matplotlib.axes.Axes | None = None) -> matplotlib.figure.Figure:
    """Each intermediate tensor is a rectangle: from the step that writes it to its last reader (x),
    at its offset in the arena (y). Rectangles stacked at the same height share memory over time."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 3.5))
    else:
        fig = ax.figure
    cmap = plt.get_cmap("tab20")
    kib = 1 / 1024
    end = max((e for s, e in plan.lifetimes.values()), default=1)
    for k, (name, buf) in enumerate(plan.assignment.items()):
        start, stop = plan.lifetimes[name]
        ax.add_patch(
            Rectangle((start, buf.offset * kib), max(stop - start, 0.6), buf.size * kib,
                      facecolor=cmap(k % 20), edgecolor="#333333", lw=0.5, alpha=0.85)
        )
    ax.set_xlim(-0.5, end + 0.5)
    ax.set_ylim(0, max(plan.arena_bytes * kib, 1e-3) * 1.05)
    ax.set_xlabel("step (op index)")
    ax.set_ylabel("arena offset (KiB)")
    ax.set_title(
        f"{plan.graph_name}: {len(plan.assignment)} tensors in {plan.arena_bytes * kib:,.0f} KiB "
        f"(no reuse: {plan.no_reuse_bytes * kib:,.0f} KiB)",
        fontsize=10,
    )
    return fig
