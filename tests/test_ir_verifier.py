"""The verifier rejects each kind of malformed graph with an error naming the node."""

import numpy as np
import pytest

from mlc_lab.ir import Graph, GraphBuilder, Node, OpError, TensorType, VerificationError


def small_graph():
    b = GraphBuilder("g")
    x = b.input("x", (2, 3))
    w = b.constant(np.ones((4, 3), np.float32), "w")
    y = b.dense(x, w, name="fc")
    z = b.relu(y, name="act")
    return b.build(z), x, w, y, z


def test_well_formed_graph_verifies():
    g, *_ = small_graph()
    assert g.verify() is g


def test_unknown_op_names_node():
    g, x, *_ = small_graph()
    bad = Node("frobnicate", (x,), {}, x.type, "mystery")
    g2 = Graph(g.nodes + [bad], g.inputs, [bad])
    with pytest.raises(VerificationError, match=r"%mystery.*unknown op 'frobnicate'"):
        g2.verify()


def test_dangling_value():
    g, x, w, y, z = small_graph()
    outsider = Node("relu", (x,), {}, x.type, "outsider")  # not in g.nodes
    use = Node("relu", (outsider,), {}, x.type, "user")
    g2 = Graph(g.nodes + [use], g.inputs, [use])
    with pytest.raises(VerificationError, match=r"%user.*%outsider.*dangling"):
        g2.verify()


def test_use_before_definition():
    g, x, w, y, z = small_graph()
    nodes = [x, w, z, y]  # relu listed before the dense it reads
    with pytest.raises(VerificationError, match=r"%act.*%fc is used before it is defined"):
        Graph(nodes, [x], [z]).verify()


def test_cycle_is_reported_as_a_chain():
    g, x, w, y, z = small_graph()
    a = Node("relu", (x,), {}, TensorType((2, 3)), "a")
    c = Node("relu", (a,), {}, TensorType((2, 3)), "c")
    a.inputs = (c,)  # close the loop by hand
    with pytest.raises(VerificationError, match=r"cycle: .*%a.*%c"):
        Graph([x, a, c], [x], [c]).verify()


def test_declared_type_mismatch():
    g, x, w, y, z = small_graph()
    wrong = Node("relu", (y,), {}, TensorType((2, 5)), "wrong")
    with pytest.raises(VerificationError, match=r"%wrong.*declared type f32\[2, 5\].*f32\[2, 4\]"):
        Graph(g.nodes + [wrong], g.inputs, [wrong]).verify()


def test_shape_error_names_op_and_shapes():
    g, x, w, y, z = small_graph()
    bad = Node("dense", (y, w), {}, TensorType((2, 4)), "fc2")  # 4 features into a 3-wide weight
    with pytest.raises(VerificationError, match=r"%fc2.*dense: input features \[4\] do not match weight \[4, 3\]"):
        Graph(g.nodes + [bad], g.inputs, [bad]).verify()


def test_dtype_mismatch():
    b = GraphBuilder()
    x = b.input("x", (2,), "float32")
    i = b.input("i", (2,), "int32")
    with pytest.raises(OpError, match=r"%add.*different dtypes"):
        b.add(x, i)


def test_bad_attribute_names_op():
    b = GraphBuilder()
    x = b.input("x", (1, 3, 8, 8))
    w = b.constant(np.ones((4, 3, 3, 3), np.float32))
    with pytest.raises(OpError, match=r"conv2d: unknown attribute\(s\) \['stride'\]"):
        b.conv2d(x, w, stride=2)
    with pytest.raises(OpError, match=r"conv2d: input has 3 channels but weight \[4, 2, 3, 3\]"):
        b.conv2d(x, b.constant(np.ones((4, 2, 3, 3), np.float32)))


def test_duplicate_names():
    g, x, w, y, z = small_graph()
    twin = Node("relu", (y,), {}, y.type, "act")
    with pytest.raises(VerificationError, match=r"%act is defined twice"):
        Graph(g.nodes + [twin], g.inputs, [twin]).verify()


def test_empty_graph():
    with pytest.raises(VerificationError, match="no outputs"):
        Graph([], [], []).verify()


def test_inputs_must_be_listed():
    g, x, w, y, z = small_graph()
    with pytest.raises(VerificationError, match=r"not listed: \['x'\]"):
        Graph(g.nodes, [], [z]).verify()


def test_output_must_be_in_graph():
    g, x, w, y, z = small_graph()
    stray = Node("relu", (z,), {}, z.type, "stray")
    with pytest.raises(VerificationError, match=r"output 0 %stray is not defined"):
        Graph(g.nodes, g.inputs, [stray]).verify()


def test_fused_subgraph_is_verified():
    inner = GraphBuilder("inner")
    p = inner.input("p", (2, 3))
    sub = inner.build(inner.relu(p))
    sub.nodes[-1].inputs = (Node("relu", (p,), {}, p.type, "ghost"),)  # break the sub-graph
    b = GraphBuilder()
    x = b.input("x", (2, 3))
    f = Node("fused", (x,), {"subgraph": sub}, TensorType((2, 3)), "f")
    with pytest.raises(VerificationError, match=r"%f \(fused\): in its sub-graph.*dangling"):
        Graph([x, f], [x], [f]).verify()


def test_constant_value_must_match_type():
    b = GraphBuilder()
    c = b.constant(np.ones((2, 2), np.float32), "c")
    lie = Node("constant", (), {"value": np.ones((2, 2), np.float32)}, TensorType((3, 3)), "lie")
    with pytest.raises(VerificationError, match=r"%lie.*declared type f32\[3, 3\]"):
        Graph([c, lie], [], [lie]).verify()
