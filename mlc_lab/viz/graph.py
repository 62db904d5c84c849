"""Draw a graph with matplotlib, laid out by Graphviz `dot`: nodes coloured by how they fuse.

Why `dot`: a layered drawing is only readable when edges go around boxes, and routing splines
around obstacles is the hard part of a layout engine. `pygraphviz` (its manylinux wheel bundles
Graphviz, so nothing beyond pip is needed) computes node positions and edge splines; matplotlib
draws them, so a figure is an ordinary matplotlib Figure like every other picture in the book.

Units: the layout is in points (1/72 inch) and the figure is drawn 1:1, so a label's font size in
the figure is `LABEL_PT` whatever the graph's size. `BOOK_WIDTH_IN` is the width the book shows
a figure at without shrinking it (its text column); wider layouts would be shrunk by the browser,
so `draw_graph` refuses to draw labels that would end up below `MIN_LABEL_PX` there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlc_lab.ir.ops import OpKind, get_op, is_source

if TYPE_CHECKING:  # the graph is only read here; importing the IR's graph module would close a cycle with Graph.draw
    import matplotlib.axes
    import matplotlib.figure

    from mlc_lab.ir.graph import Graph, Node

KIND_COLORS = {
    "input": "#d9d9d9",
    "constant": "#f2f2f2",
    OpKind.ELEMWISE: "#b3e2cd",
    OpKind.BROADCAST: "#b3e2cd",
    OpKind.INJECTIVE: "#cbd5e8",
    OpKind.REDUCTION: "#fdcdac",
    OpKind.OUT_FUSABLE: "#f4cae4",
    "fused": "#fff2ae",
}
#: label font size in the figure, in points (drawn 1:1 from the layout)
LABEL_PT = 10.0
#: figures are saved at this resolution (matplotlib's default, which the book's inline backend keeps)
DPI = 100
#: the book's text column: a figure up to this wide is shown at its natural size
BOOK_WIDTH_IN = 7.2
#: the smallest label, in CSS pixels, a reader should have to read
MIN_LABEL_PX = 10.0
#: padding between a label and its box, in points
PAD_PT = 5.0


@dataclass(frozen=True)
class Box:
    """One drawn node: centre (x, y) and size, in points; y grows upwards (inputs at the top)."""

    name: str
    label: str
    x: float
    y: float
    width: float
    height: float

    def contains(self, px: float, py: float, margin: float = 0.0) -> bool:
        """Whether (px, py) lies inside the box shrunk by `margin` on every side."""
        return abs(px - self.x) < self.width / 2 - margin and abs(py - self.y) < self.height / 2 - margin


@dataclass(frozen=True)
class Edge:
    """One dataflow edge: a cubic B-spline from `src`'s box towards `dst`'s, ending at `head` (the arrow tip)."""

    src: str
    dst: str
    points: tuple[tuple[float, float], ...]  # 1 + 3k control points, as Graphviz gives them
    head: tuple[float, float]

    def samples(self, per_segment: int = 16) -> list[tuple[float, float]]:
        """Points along the curve (each cubic piece evaluated at `per_segment` steps) and the arrow."""
        out = []
        for k in range(0, len(self.points) - 3, 3):
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self.points[k : k + 4]
            for i in range(per_segment + 1):
                t = i / per_segment
                a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
                out.append((a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3))
        return [*out, self.head]


@dataclass(frozen=True)
class GraphLayout:
    """Where everything goes: boxes by node name, edges, and the drawing's size in points."""

    boxes: dict[str, Box]
    edges: tuple[Edge, ...]
    width: float
    height: float

    def crossings(self, margin: float = 1.0) -> list[tuple[str, str, str]]:
        """(edge source, edge destination, box) for every edge that passes through a box it does not join."""
        hits = []
        for edge in self.edges:
            for box in self.boxes.values():
                if box.name in (edge.src, edge.dst):
                    continue
                if any(box.contains(x, y, margin) for x, y in edge.samples()):
                    hits.append((edge.src, edge.dst, box.name))
        return hits


def node_color(node: Node) -> str:
    if is_source(node.op) or node.op == "fused":
        return KIND_COLORS[node.op]
    return KIND_COLORS.get(get_op(node.op).kind, "#ffffff")


def node_label(node: Node) -> str:
    shape = "x".join(map(str, node.type.shape)) or "scalar"
    if node.op == "fused":
        members = [n.op for n in node.subgraph.ops]
        title = node.attrs.get("pattern") or "fused"
        return f"{title}\n[{' + '.join(members)}]\n{shape}"
    if node.op == "input":
        return f"{node.name}\n{shape}"
    return f"{node.op}\n{shape}"


@functools.lru_cache(maxsize=4096)
def _text_size(label: str, size: float) -> tuple[float, float]:
    """Width and height of a (multi-line) label in points, measured with matplotlib's own font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    font = FontProperties(size=size)
    lines = label.split("\n")
    width = max(TextToPath().get_text_width_height_descent(line, font, ismath=False)[0] for line in lines)
    return width, len(lines) * size * 1.25


def graph_layout(graph: Graph, show_constants: bool = False) -> GraphLayout:
    """Lay `graph` out top (inputs) to bottom (outputs) with Graphviz `dot`: boxes sized to their labels."""
    try:
        import pygraphviz
    except ImportError as e:  # the one drawing dependency beyond matplotlib: say how to get it
        raise ImportError(
            f"drawing a graph needs pygraphviz (Graphviz's layout engine): pip install pygraphviz==2.0.4 ({e})"
        ) from None

    shown = [n for n in graph.nodes if show_constants or n.op != "constant"]
    ids = {n: f"n{k}" for k, n in enumerate(shown)}
    dot = pygraphviz.AGraph(directed=True, strict=False)
    # Labels stay empty for dot: boxes get their measured size, and Graphviz never loads fonts.
    dot.graph_attr.update(rankdir="TB", nodesep="0.25", ranksep="0.35", splines="spline")
    dot.node_attr.update(shape="box", fixedsize="true", label="")
    labels = {}
    for node in shown:
        labels[node] = node_label(node)
        w, h = _text_size(labels[node], LABEL_PT)
        dot.add_node(ids[node], width=(w + 2 * PAD_PT) / 72, height=(h + 2 * PAD_PT) / 72)
    for node in shown:
        for k, source in enumerate(node.inputs):
            if source in ids:
                dot.add_edge(ids[source], ids[node], key=f"{ids[node]}:{k}")
    dot.layout(prog="dot")
    boxes = {}
    for node in shown:
        attr = dot.get_node(ids[node]).attr
        x, y = (float(v) for v in attr["pos"].split(","))
        boxes[node.name] = Box(
            node.name, labels[node], x, y, float(attr["width"]) * 72, float(attr["height"]) * 72
        )
    names = {ids[n]: n.name for n in shown}
    edges = []
    for src, dst, key in dot.edges(keys=True):
        head, points = None, []
        for token in dot.get_edge(src, dst, key).attr["pos"].split():
            if token.startswith("e,"):
                head = tuple(float(v) for v in token[2:].split(","))
            elif not token.startswith("s,"):
                points.append(tuple(float(v) for v in token.split(",")))
        edges.append(Edge(names[src], names[dst], tuple(points), head or points[-1]))
    _, _, width, height = (float(v) for v in dot.graph_attr["bb"].split(","))
    return GraphLayout(boxes, tuple(edges), width, height)


def label_px_at_book_width(layout: GraphLayout) -> float:
    """A label's height in CSS pixels once the book shrinks the figure to its text column (if it must)."""
    natural = LABEL_PT * DPI / 72
    return natural * min(1.0, BOOK_WIDTH_IN * 72 / max(layout.width, 1.0))


def draw_graph(
    graph: Graph,
    ax: matplotlib.axes.Axes | None = None,
    show_constants: bool = False,
    title: str | None = None,
    max_nodes: int = 400,
) -> matplotlib.figure.Figure:
    """Return a figure of `graph`, top (inputs) to bottom (outputs); the graph output has a red frame."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, PathPatch
    from matplotlib.path import Path

    if len(graph.nodes) > max_nodes:
        raise ValueError(f"graph {graph.name!r} has {len(graph.nodes)} nodes; draw at most {max_nodes} (max_nodes=)")
    layout = graph_layout(graph, show_constants)
    own_figure = ax is None
    if own_figure:
        if label_px_at_book_width(layout) < MIN_LABEL_PX:
            raise ValueError(
                f"graph {graph.name!r} lays out {layout.width / 72:.1f} in wide: the book would shrink its labels "
                f"below {MIN_LABEL_PX:g} px; draw a part of it (a smaller graph, or show_constants=False)"
            )
        margin = 6.0
        fig = plt.figure(figsize=((layout.width + 2 * margin) / 72, (layout.height + 2 * margin + 20) / 72), dpi=DPI)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(-margin, layout.width + margin)
        ax.set_ylim(-margin, layout.height + margin + 20)
    else:
        fig = ax.figure
        ax.set_xlim(0, layout.width)
        ax.set_ylim(0, layout.height)
    for edge in layout.edges:
        codes = [Path.MOVETO] + [Path.CURVE4] * (len(edge.points) - 1)
        ax.add_patch(PathPatch(Path(edge.points, codes), facecolor="none", edgecolor="#555555", lw=0.9))
        ax.add_patch(
            FancyArrowPatch(edge.points[-1], edge.head, arrowstyle="-|>", mutation_scale=9, color="#555555", lw=0.9)
        )
    outputs = {n.name for n in graph.outputs}
    nodes = {n.name: n for n in graph.nodes}
    for box in layout.boxes.values():
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.width / 2, box.y - box.height / 2),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=4",
                facecolor=node_color(nodes[box.name]),
                edgecolor="#c0392b" if box.name in outputs else "#333333",
                lw=1.6 if box.name in outputs else 1.0,
            )
        )
        ax.text(box.x, box.y, box.label, ha="center", va="center", fontsize=LABEL_PT, linespacing=1.1)
    ax.axis("off")
    heading = title or f"graph {graph.name}: {len(graph.ops)} ops"
    if own_figure:  # the title sits in the strip kept above the layout
        ax.text(layout.width / 2, layout.height + 14, heading, ha="center", va="center", fontsize=LABEL_PT + 1)
    else:
        ax.set_title(heading, fontsize=LABEL_PT + 1)
    return fig
