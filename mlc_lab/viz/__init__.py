"""Pictures the chapters use: graphs, memory plans, charts, accelerator mappings (systolic, wafer, dataflow)."""

from mlc_lab.viz.accelerators import (
    plot_dataflow_mapping,
    plot_pe_snapshots,
    plot_systolic_layers,
    plot_systolic_utilization,
    plot_wafer_heatmap,
)
from mlc_lab.viz.charts import grouped_bars
from mlc_lab.viz.graph import draw_graph
from mlc_lab.viz.memory import draw_memory_plan

__all__ = [
    "draw_graph",
    "draw_memory_plan",
    "grouped_bars",
    "plot_dataflow_mapping",
    "plot_pe_snapshots",
    "plot_systolic_layers",
    "plot_systolic_utilization",
    "plot_wafer_heatmap",
]
