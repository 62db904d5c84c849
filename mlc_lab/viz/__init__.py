"""Pictures the chapters use: graphs, and later rooflines, tuning curves and wafer heatmaps."""

from mlc_lab.viz.charts import grouped_bars
from mlc_lab.viz.graph import draw_graph

__all__ = ["draw_graph", "grouped_bars"]
