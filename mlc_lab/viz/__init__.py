"""Pictures the chapters use: graphs, accelerator mappings (systolic, wafer, dataflow); later rooflines, tuning."""

from mlc_lab.viz.accelerators import (
    plot_dataflow_mapping,
    plot_pe_snapshots,
    plot_systolic_layers,
    plot_systolic_utilization,
    plot_wafer_heatmap,
)
from mlc_lab.viz.graph import draw_graph

__all__ = [
    "draw_graph",
    "plot_dataflow_mapping",
    "plot_pe_snapshots",
    "plot_systolic_layers",
    "plot_systolic_utilization",
    "plot_wafer_heatmap",
]
