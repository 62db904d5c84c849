"""Graph drawings a reader can read: Graphviz `dot` routes every edge around the boxes it does not
join, boxes never overlap, and labels stay >= 10 px at the book's width (wider layouts are refused)."""

from __future__ import annotations

import itertools

import matplotlib
import pytest

from mlc_lab import zoo
from mlc_lab.ir import GraphBuilder
from mlc_lab.passes.fusion import OperatorFusionPass
from mlc_lab.viz.graph import MIN_LABEL_PX, Box, Edge, GraphLayout, draw_graph, graph_layout, label_px_at_book_width

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def drawings():
    cnn = zoo.load("small_cnn").graph()
    fused = OperatorFusionPass(["conv2d_bn_relu", "conv2d_add_relu", "matmul_add"]).apply(cnn)
    b = GraphBuilder("diamonds")  # three residual skips over chains of different lengths, nested
    x = b.input("x", (2, 8))
    a = b.relu(x)
    c = b.add(b.exp(b.neg(a)), a)
    d = b.add(b.tanh(b.sigmoid(b.exp(c))), b.mul(c, x))
    return {"small_cnn": cnn, "small_cnn fused": fused, "diamonds": b.build(d)}


@pytest.mark.parametrize("name", ["small_cnn", "small_cnn fused", "diamonds"])
def test_edges_go_around_boxes_and_boxes_do_not_overlap(drawings, name):
    graph = drawings[name]
    layout = graph_layout(graph)
    shown = [n for n in graph.nodes if n.op != "constant"]
    assert sorted(layout.boxes) == sorted(n.name for n in shown)
    wanted = sorted((i.name, n.name) for n in shown for i in n.inputs if i.op != "constant")
    assert sorted((e.src, e.dst) for e in layout.edges) == wanted
    assert layout.crossings() == [], "an edge runs through a box"
    for p, q in itertools.combinations(layout.boxes.values(), 2):
        apart_x = abs(p.x - q.x) >= (p.width + q.width) / 2
        apart_y = abs(p.y - q.y) >= (p.height + q.height) / 2
        assert apart_x or apart_y, f"boxes %{p.name} and %{q.name} overlap"
    for e in layout.edges:  # edges run downwards, inputs above their users
        assert layout.boxes[e.src].y > layout.boxes[e.dst].y
    assert label_px_at_book_width(layout) >= MIN_LABEL_PX


def test_crossings_are_found():
    boxes = {n: Box(n, n, 50, y, 40, 20) for n, y in (("a", 100), ("b", 50), ("c", 0))}
    straight = Edge("a", "c", ((50, 90), (50, 60), (50, 30), (50, 10)), (50, 10))  # through b
    around = Edge("a", "c", ((50, 90), (120, 60), (120, 30), (50, 10)), (50, 10))
    assert GraphLayout(boxes, (straight,), 100, 110).crossings() == [("a", "c", "b")]
    assert GraphLayout(boxes, (around,), 100, 110).crossings() == []


def test_figure_is_drawn_at_label_size_and_too_wide_graphs_are_refused(drawings):
    fig = draw_graph(drawings["small_cnn"])
    texts = [t for t in fig.axes[0].texts if "\n" in t.get_text()]
    assert texts and min(t.get_fontsize() for t in texts) >= 10
    assert fig.get_size_inches()[0] <= 7.2
    b = GraphBuilder("wide")
    x = b.input("x", (2, 2))
    wide = b.build([b.relu(b.exp(x)) for _ in range(40)])
    with pytest.raises(ValueError, match="graph 'wide' lays out .* wide"):
        draw_graph(wide)
