"""The IR parser reads the printer's text back: parse(print(g)) == g, structurally (names, ops, wiring,
types, attributes, constant bits), on the zoo, on generated graphs, and after the passes; bad text is a
ParseError naming the line and the problem."""

import textwrap

import numpy as np
import pytest
from graph_strategies import pack_cases, random_conv_graphs, random_graphs, typed_cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlc_lab import zoo
from mlc_lab.ir import GraphBuilder, Node, TensorType, interpret
from mlc_lab.ir.equality import graph_diff
from mlc_lab.ir.parser import ParseError, parse_graph
from mlc_lab.ir.printer import constant_payloads, format_graph
from mlc_lab.passes.fusion import PATTERNS, ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.memory import MemoryLayoutOptimizer

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def round_trip(graph):
    text = format_graph(graph)
    back = parse_graph(text, constant_payloads(graph))
    assert graph_diff(graph, back) is None, graph_diff(graph, back)
    assert format_graph(back) == text
    return back


@pytest.fixture(scope="module", params=zoo.names())
def model(request):
    return zoo.load(request.param)


def test_zoo_round_trips_before_and_after_passes(model):
    graph = model.graph()
    for g in (
        graph,
        OperatorFusionPass(list(PATTERNS)).apply(graph),
        ElementwiseFusionPass().apply(graph),
        MemoryLayoutOptimizer("NCHW8c").apply(FoldBatchNorm().apply(graph)),
    ):
        back = round_trip(g)
    x = model.numpy_inputs()
    np.testing.assert_array_equal(interpret(back, *x)[0], interpret(g, *x)[0])


@FAST
@given(random_graphs())
def test_generated_graphs_round_trip(rg):
    round_trip(rg.graph)
    round_trip(ElementwiseFusionPass().apply(rg.graph))


@FAST
@given(random_conv_graphs(), st.sampled_from(["NHWC", "NCHW4c", "NCHW8c"]))
def test_generated_conv_graphs_round_trip_through_layout_and_fusion(graph, layout):
    round_trip(graph)
    moved = MemoryLayoutOptimizer(layout).apply(FoldBatchNorm().apply(graph))
    round_trip(moved)
    round_trip(OperatorFusionPass(list(PATTERNS)).apply(moved))


@FAST
@given(st.lists(typed_cases(), min_size=1, max_size=4))
def test_typed_graphs_round_trip(cases):
    """Every dtype, 0-d and empty shapes, int/float/bool attributes and small constants inline."""
    graph, _ = pack_cases(cases)
    round_trip(graph)


def test_small_constants_print_their_exact_bits():
    b = GraphBuilder("bits")
    x = b.input("x", (4,), "float64")
    odd = np.array([0.1, -0.0, np.nan, -np.inf], np.float64)
    y = b.add(x, b.constant(odd, "odd"))
    f32 = b.cast(y, dtype="float32")
    z = b.mul(f32, b.constant(np.float32(0.70710677), "r"))
    h = b.cast(z, dtype="float16")
    graph = b.build([h, b.constant(np.array([True, False]), "flags"), b.constant(np.zeros((0, 3), np.int64), "none")])
    back = round_trip(graph)
    assert "[ 0.1, -0. ,  nan, -inf]" in str(graph)
    assert np.signbit(back.node("odd").value[1]) and np.isnan(back.node("odd").value[2])


def test_odd_names_and_strings_are_quoted():
    b = GraphBuilder("model/v1 (onnx)")
    x = b.input("input:0", (1, 8, 4, 4))
    t = b.layout_transform(x, dst_layout="NCHW8c", name='/layer1/Conv "out"')
    graph = b.build(b.relu(t, name="relu.0"))
    text = format_graph(graph)
    assert text.startswith('graph "model/v1 (onnx)"(%"input:0": f32[1, 8, 4, 4])')
    assert '%"/layer1/Conv \\"out\\""' in text and "%relu.0 = relu" in text
    round_trip(graph)


def test_fused_subgraph_name_is_kept_when_it_is_not_the_pattern():
    inner = GraphBuilder("conv_relu")
    p = inner.input("p", (1, 4))
    sub = inner.build(inner.relu(p))
    b = GraphBuilder("outer")
    x = b.input("x", (1, 4))
    f = b.add_node(Node("fused", (x,), {"subgraph": sub, "pattern": "relu"}, TensorType((1, 4)), "f"))
    graph = b.build(f)
    assert "      // graph conv_relu\n" in str(graph)
    assert round_trip(graph).node("f").subgraph.name == "conv_relu"
    fused = OperatorFusionPass(["matmul_add"]).apply(zoo.load("mlp").graph())
    assert "// graph" not in str(fused)  # fusion passes name sub-graphs after their pattern


def test_hand_written_text_parses_with_defaults_and_verifies():
    text = """
        // the pass manager's headers are comments
        graph g(%x: f32[1, 2, 4, 4]) -> (f32[1, 2, 2, 2]) {
          %pool = max_pool2d(%x) : f32[1, 2, 2, 2]
          %two = constant 2. : f32[]
          %out = mul(%pool, %two) : f32[1, 2, 2, 2]
          return %out
        }"""
    graph = parse_graph(text)
    assert graph.node("pool").attrs["kernel"] == (2, 2) and graph.node("pool").attrs["data_layout"] == "NCHW"
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    want = 2 * x.reshape(1, 2, 2, 2, 2, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(interpret(graph, x)[0], want)


def test_graph_diff_sees_every_kind_of_change():
    def build(value=1.0, name="y", clip_max=6.0, big=None):
        b = GraphBuilder("g")
        x = b.input("x", (3,))
        c = b.constant(np.array([1.0, value, 3.0], np.float32), "c")
        w = b.constant(np.ones(9, np.float32) if big is None else big, "w")
        y = b.clip(b.add(x, c), max=clip_max, name=name)
        return b.build([y, w])

    base = build()
    assert graph_diff(base, build()) is None
    assert "values differ" in graph_diff(base, build(value=np.nextafter(np.float32(1), np.float32(2))))
    assert "values differ" in graph_diff(build(value=0.0), build(value=-0.0))
    assert "%y" in graph_diff(base, build(name="z"))
    assert "6.0 vs 6" in graph_diff(base, build(clip_max=6))  # an int attribute is not a float one
    assert "f32[9] vs %w = constant : f64[9]" in graph_diff(base, build(big=np.ones(9)))


def bad(text, constants=None):
    with pytest.raises(ParseError) as e:
        parse_graph(textwrap.dedent(text), constants)
    return str(e.value)


HEADER = "graph g(%x: f32[2]) -> (f32[2]) {\n"


def test_errors_name_the_problem_and_the_line():
    assert "unknown op 'frobnicate'" in bad(HEADER + "  %y = frobnicate(%x) : f32[2]\n  return %y\n}")
    assert "line 2" in bad(HEADER + "  %y = frobnicate(%x) : f32[2]\n  return %y\n}")
    assert "%z is used before it is defined" in bad(HEADER + "  %y = relu(%z) : f32[2]\n  return %y\n}")
    assert "%x is defined twice" in bad(HEADER + "  %x = relu(%x) : f32[2]\n  return %x\n}")
    assert "unknown element type 'f31'" in bad(HEADER + "  %y = relu(%x) : f31[2]\n  return %y\n}")
    assert "relu: unknown attribute" in bad(HEADER + "  %y = relu(%x) {alpha=0.1} : f32[2]\n  return %y\n}")
    wrong_type = bad(HEADER + "  %y = relu(%x) : f32[3]\n  return %x\n}")  # disagrees with relu's type rule
    assert "not valid" in wrong_type and "%y" in wrong_type
    assert "declares results (f32[2]) but returns (f32[2], f32[2])" in bad(HEADER + "  return %x, %x\n}")
    assert "ends without 'return'" in bad(HEADER + "  %y = relu(%x) : f32[2]\n")
    assert "after the graph" in bad(HEADER + "  return %x\n}\ngraph h() -> () {\n  return\n}")
    three = HEADER + "  %c = constant [1., 2., 3.] : f32[2]\n  return %x\n}"
    assert "values of shape [3] for type f32[2]" in bad(three)


def test_large_constants_need_their_payload():
    text = HEADER + "  %w = constant : f32[16]\n  %y = add(%x, %x) : f32[2]\n  return %y\n}"
    assert "constant %w (f32[16]) prints no values and no payload" in bad(text)
    assert "payload for constant %w is f64[16]" in bad(text, {"w": np.zeros(16)})
    assert parse_graph(text, {"w": np.zeros(16, np.float32)}).node("w").value.shape == (16,)
