"""Pictures the chapters use: graphs, and later rooflines, tuning curves and wafer heatmaps."""

from mlc_lab.viz.charts import grouped_bars
from mlc_lab.viz.graph import draw_graph
from mlc_lab.viz.memory import draw_memory_plan

__all__ = ["draw_graph", "draw_memory_plan", "grouped_bars"]
