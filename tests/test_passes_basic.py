"""Pass infrastructure, constant folding and DCE: semantics preserved, inputs never edited."""

import io

import numpy as np
import pytest
from graph_strategies import random_graphs
from hypothesis import given, settings

from mlc_lab.ir import Graph, GraphBuilder, Node, TensorType, interpret
from mlc_lab.passes import DeadCodeElimination, FoldConstants, Pass, PassError, PassManager


def graph_with_foldable_and_dead_code():
    b = GraphBuilder("g")
    x = b.input("x", (2, 4))
    w = b.constant(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    wt = b.transpose(b.transpose(w), name="wtt")  # constant-only: folds
    two = b.add(b.constant(1.0, "one"), b.constant(1.0, "one_again"), name="two")
    y = b.dense(x, wt, name="fc")
    b.sigmoid(y, name="unused")  # dead
    return b.build(b.mul(y, two, name="out"))


def test_fold_then_dce_preserves_semantics():
    g = graph_with_foldable_and_dead_code()
    before_text = str(g)
    out = PassManager([FoldConstants(), DeadCodeElimination()]).apply(g)
    assert str(g) == before_text, "a pass edited its input graph"
    assert out.op_counts() == {"dense": 1, "mul": 1}
    assert out.node("two").op == "constant" and float(out.node("two").value) == 2.0
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    np.testing.assert_array_equal(interpret(out, x)[0], interpret(g, x)[0])


def test_dce_keeps_unused_inputs():
    b = GraphBuilder()
    x = b.input("x", (2,))
    b.input("unused_input", (3,))
    g = DeadCodeElimination().apply(b.build(b.relu(x)))
    assert [i.name for i in g.inputs] == ["x", "unused_input"]


def test_fold_max_elements_bounds_folded_size():
    b = GraphBuilder()
    x = b.input("x", (64, 64))
    big = b.broadcast_to(b.constant(1.0), shape=(64, 64), name="big")
    g = b.build(b.add(x, big))
    assert FoldConstants(max_elements=100).apply(g).node("big").op == "broadcast_to"
    assert FoldConstants().apply(g).node("big").op == "constant"


def test_pass_manager_blames_the_pass_that_breaks_the_graph():
    class Breaker(Pass):
        def run(self, graph):
            out = graph.copy()
            last = out.outputs[0]
            out.outputs[0] = Node(last.op, last.inputs, last.attrs, TensorType((9, 9)), "broken")
            out.nodes.append(out.outputs[0])
            return out

    with pytest.raises(PassError, match=r"pass Breaker produced an invalid graph:.*%broken.*declared type f32\[9, 9\]"):
        PassManager([FoldConstants(), Breaker()]).apply(graph_with_foldable_and_dead_code())


def test_pass_manager_prints_ir_and_summary():
    buf = io.StringIO()
    pm = PassManager([FoldConstants(), DeadCodeElimination()], print_ir="diff", file=buf)
    pm.apply(graph_with_foldable_and_dead_code())
    text = buf.getvalue()
    assert "-  %two = add(%one, %one_again) : f32[]" in text
    assert "+  %two = constant 2. : f32[]" in text
    assert "-  %unused = sigmoid(%fc) : f32[2, 3]" in text
    lines = pm.summary().splitlines()
    assert lines[1].split()[:3] == ["FoldConstants", "6", "3"]
    assert lines[2].split()[:3] == ["DeadCodeElimination", "3", "2"]


def test_pass_manager_rejects_non_passes():
    with pytest.raises(TypeError, match="is not a pass"):
        PassManager([lambda g: g])


def test_copy_is_deep_for_nodes():
    g = graph_with_foldable_and_dead_code()
    c = g.copy()
    assert str(c) == str(g)
    assert not set(c.nodes) & set(g.nodes)
    assert isinstance(c, Graph)


@settings(max_examples=100, deadline=None)
@given(random_graphs())
def test_fold_and_dce_differential(rg):
    g = rg.graph
    out = PassManager([FoldConstants(), DeadCodeElimination()]).apply(g)
    inputs = rg.random_inputs(1)
    np.testing.assert_allclose(interpret(out, *inputs)[0], interpret(g, *inputs)[0], rtol=1e-6, atol=1e-6)
