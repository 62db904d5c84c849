"""mlc_lab.codegen.tvm against the reference interpreter: every op, fused groups, the zoo, errors."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import numpy as np
import pytest
from graph_strategies import random_graphs
from hypothesis import HealthCheck, given, settings

from mlc_lab import zoo
from mlc_lab.codegen.tvm import TE_OPS, LoweringError, UnsupportedOpError, build, default_schedule, host_target
from mlc_lab.ir import Graph, GraphBuilder, Node, TensorType, get_op
from mlc_lab.ir.ops import OPS
from mlc_lab.op_coverage import missing_lowerings
from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.memory import MemoryLayoutOptimizer

#: The fusion variants every zoo model is compiled in.
FUSIONS: dict[str, Callable[[Graph], Graph]] = {
    "unfused": lambda g: g,
    "operator_fusion": lambda g: OperatorFusionPass().apply(g),
    "bn_folded+elementwise_fusion": lambda g: ElementwiseFusionPass().apply(FoldBatchNorm().apply(g)),
}

TOL = 1e-4
SCHEDULES = {"default": default_schedule, "naive": None}


def random_inputs(graph: Graph, seed: int = 0, positive: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = []
    for x in graph.inputs:
        if x.dtype.startswith("float"):
            a = rng.standard_normal(x.shape)
            arrays.append((np.abs(a) + 0.1 if positive else a).astype(x.dtype))
        else:
            arrays.append(rng.integers(-9, 10, x.shape).astype(x.dtype))
    return arrays


def assert_matches(graph: Graph, inputs: list[np.ndarray], schedule=default_schedule, tol: float = TOL) -> None:
    compiled = build(graph, schedule=schedule)
    got, want = compiled(*inputs), graph(*inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=0, atol=tol)


def const(b: GraphBuilder, shape: tuple[int, ...], seed: int, name: str = "w", positive: bool = False) -> Node:
    a = np.random.default_rng(seed).standard_normal(shape)
    return b.constant((np.abs(a) + 0.5 if positive else a).astype(np.float32), name)


# == one small graph per op (and per interesting attribute) ==========================================
def unary(op: str, in_shape=(2, 3, 5), in_dtype="float32", **attrs) -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder(op)
        return b.build(b.op(op, b.input("x", in_shape, in_dtype), **attrs))

    return make


def binary(op: str, sa=(3, 1, 4), sb=(5, 4), dtype="float32") -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder(op)
        return b.build(b.op(op, b.input("a", sa, dtype), b.input("b", sb, dtype)))

    return make


def conv(shape=(1, 4, 9, 9), wshape=(8, 4, 3, 3), **attrs) -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder("conv")
        return b.build(b.conv2d(b.input("x", shape), const(b, wshape, 1), **attrs))

    return make


def pool(op: str, in_shape=(1, 3, 9, 10), **attrs) -> Callable[[], Graph]:
    return unary(op, in_shape, **attrs)


def bias_add(axis: int, shape=(1, 4, 3, 3)) -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder("bias_add")
        x = b.input("x", shape)
        return b.build(b.bias_add(x, const(b, (shape[axis],), 2), axis=axis))

    return make


def batch_norm(axis: int, shape=(1, 4, 3, 5)) -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder("bn")
        x, c = b.input("x", shape), shape[axis]
        params = [const(b, (c,), 3 + k, f"p{k}", positive=k == 3) for k in range(4)]
        return b.build(b.batch_norm(x, *params, axis=axis, eps=1e-3))

    return make


def layer_norm(axis: int, shape=(2, 3, 8)) -> Callable[[], Graph]:
    def make() -> Graph:
        b = GraphBuilder("ln")
        x = b.input("x", shape)
        gamma, beta = const(b, shape[axis:], 4, "g"), const(b, shape[axis:], 5, "b")
        return b.build(b.layer_norm(x, gamma, beta, axis=axis))

    return make


def matmul(sa, sb, op="matmul") -> Callable[[], Graph]:
    return binary(op, sa, sb)


def concat() -> Graph:
    b = GraphBuilder("concat")
    xs = [b.input(f"x{k}", (2, k + 1, 3)) for k in range(3)]
    return b.build(b.concat(*xs, axis=1))


def where_case() -> Graph:
    b = GraphBuilder("where")
    cond = b.input("c", (3, 1, 4), "bool")
    return b.build(b.op("where", cond, b.input("a", (5, 4)), b.input("b", ())))


def take(table=(10, 4), indices=(2, 3), axis=0, dtype="int64") -> Callable[[], Graph]:
    """Random positions are in [-9, 10): negative ones count from the end of a 10-long axis."""

    def make() -> Graph:
        b = GraphBuilder("take")
        return b.build(b.op("take", b.input("x", table), b.input("i", indices, dtype), axis=axis))

    return make


def attention_case(causal: bool, masked: bool) -> Graph:
    """softmax(q k^T * scale [+ mask]) v: TVM's online-softmax kernel (codegen/tvm/native/attention.py)."""
    b = GraphBuilder("fused_attention")
    q, k, v = b.input("q", (1, 2, 5, 8)), b.input("k", (1, 2, 7, 8)), b.input("v", (1, 2, 7, 4))
    mask = [const(b, (1, 1, 5, 7), 3, "mask")] if masked else []
    return b.build(b.fused_attention(q, k, v, *mask, scale=0.35, causal=causal))


def dequant_case(transpose_b: bool) -> Graph:
    """x @ (int8 weight * per-channel scales): the int8 weight widened in the product's inner loop."""
    b = GraphBuilder("matmul_dequant")
    w = np.random.default_rng(5).integers(-127, 128, (6, 10) if transpose_b else (10, 6)).astype(np.int8)
    scales = b.constant(np.linspace(0.01, 0.05, 6, dtype=np.float32), "scales")
    out = b.matmul_dequant(b.input("x", (2, 3, 10)), b.constant(w, "w"), scales, transpose_b=transpose_b)
    return b.build(out)


OP_CASES: dict[str, Callable[[], Graph]] = {
    **{op: unary(op) for op in ("relu", "sigmoid", "tanh", "exp", "erf", "silu", "neg", "abs")},
    "log": unary("log"),
    "sqrt": unary("sqrt"),
    "rsqrt": unary("rsqrt"),
    "neg_int": unary("neg", in_dtype="int32"),
    "abs_int": unary("abs", in_dtype="int32"),
    "gelu": unary("gelu"),
    "gelu_tanh": unary("gelu", approximate="tanh"),
    "clip": unary("clip", min=-0.5, max=0.7),
    "clip_min_only": unary("clip", min=0.0),
    "clip_int_float_bounds": unary("clip", in_dtype="int32", min=-2.5, max=3.5),
    "cast": unary("cast", dtype="int32"),
    "cast_int_to_float": unary("cast", in_dtype="int32", dtype="float32"),
    **{op: binary(op) for op in ("add", "sub", "mul", "div", "maximum", "minimum")},
    "pow": binary("pow"),
    "div_int_floor": binary("div", dtype="int32"),
    "add_scalar": binary("add", (2, 3), ()),
    "bias_add_nchw": bias_add(1),
    "bias_add_last": bias_add(-1, (2, 5)),
    "matmul_2d": matmul((3, 4), (4, 5)),
    "matmul_batch_broadcast": matmul((2, 1, 3, 4), (5, 4, 6)),
    "dense": matmul((2, 3, 8), (5, 8), "dense"),
    "sum_all": unary("sum"),
    "sum_keepdims": unary("sum", axes=(0, 2), keepdims=True),
    "mean": unary("mean", axes=1),
    "mean_int": unary("mean", in_dtype="int32", axes=(1, 2)),
    "max": unary("max", axes=-1),
    "min": unary("min", axes=(0, 1), keepdims=True),
    "reshape": unary("reshape", shape=(3, -1)),
    "transpose": unary("transpose", perm=(2, 0, 1)),
    "transpose_reverse": unary("transpose"),
    "concat": concat,
    "slice": unary("slice", (6, 7, 5), axes=(0, 1, 2), starts=(1, -6, 0), ends=(100, 7, -1), steps=(2, 3, 1)),
    "broadcast_to": unary("broadcast_to", (3, 1), shape=(2, 3, 4)),
    "pad": unary("pad", (2, 3), pads=(1, 0, 2, 3), value=-1.5),
    "layout_transform_blocked": unary("layout_transform", (1, 16, 3, 2), src_layout="NCHW", dst_layout="NCHW8c"),
    "layout_transform_back": unary("layout_transform", (1, 2, 3, 2, 8), src_layout="NCHW8c", dst_layout="NHWC"),
    "layout_transform_kernel": unary("layout_transform", (16, 8, 3, 3), src_layout="OIHW", dst_layout="OIHW8i8o"),
    "conv2d": conv(),
    "conv2d_stride_asym_padding": conv(strides=2, padding=(1, 2, 0, 1)),
    "conv2d_dilation": conv(dilation=2, padding=2),
    "conv2d_groups": conv(wshape=(8, 2, 3, 3), groups=2, padding=1),
    "conv2d_depthwise": conv(wshape=(4, 1, 3, 3), groups=4, strides=(2, 1), padding=1),
    "conv2d_1x1": conv(wshape=(8, 4, 1, 1)),
    "conv2d_nhwc_hwio": conv((1, 9, 9, 4), (3, 3, 4, 8), padding=1, data_layout="NHWC", kernel_layout="HWIO"),
    "conv2d_nhwc_oihw": conv((1, 9, 9, 4), (8, 4, 3, 3), strides=2, data_layout="NHWC"),
    "conv2d_nchw8c": conv(
        (1, 2, 6, 6, 8), (2, 2, 3, 3, 8, 8), padding=1, data_layout="NCHW8c", kernel_layout="OIHW8i8o"
    ),
    "conv2d_nchw8c_groups": conv((1, 2, 6, 6, 8), (16, 8, 3, 3), groups=2, data_layout="NCHW8c"),
    "max_pool2d": pool("max_pool2d", kernel=3, strides=2, padding=1),
    "max_pool2d_ceil": pool("max_pool2d", kernel=3, strides=2, ceil_mode=True),
    "max_pool2d_dilation": pool("max_pool2d", kernel=2, strides=1, dilation=2, padding=1),
    "max_pool2d_nhwc": pool("max_pool2d", (1, 9, 10, 3), kernel=2, data_layout="NHWC"),
    "max_pool2d_nchw8c": pool("max_pool2d", (1, 1, 7, 7, 8), kernel=3, strides=2, ceil_mode=True, data_layout="NCHW8c"),
    "avg_pool2d": pool("avg_pool2d", kernel=3, strides=2, padding=1),
    "avg_pool2d_exclude_pad": pool("avg_pool2d", kernel=3, strides=2, padding=1, count_include_pad=False),
    "avg_pool2d_ceil": pool("avg_pool2d", kernel=2, strides=2, padding=1, ceil_mode=True),
    "avg_pool2d_ceil_exclude": pool("avg_pool2d", kernel=3, strides=2, ceil_mode=True, count_include_pad=False),
    "avg_pool2d_nhwc": pool("avg_pool2d", (1, 9, 10, 3), kernel=3, padding=(0, 1), data_layout="NHWC"),
    "global_avg_pool2d": pool("global_avg_pool2d"),
    "global_avg_pool2d_nhwc": pool("global_avg_pool2d", (1, 5, 4, 3), data_layout="NHWC"),
    "global_avg_pool2d_nchw8c": pool("global_avg_pool2d", (1, 2, 5, 4, 8), data_layout="NCHW8c"),
    "batch_norm": batch_norm(1),
    "batch_norm_nhwc": batch_norm(3),
    "layer_norm": layer_norm(-1),
    "layer_norm_two_axes": layer_norm(1),
    "softmax": unary("softmax"),
    "softmax_axis1": unary("softmax", axis=1),
    "log_softmax": unary("log_softmax", axis=0),
    **{op: binary(op) for op in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal")},
    "equal_int": binary("equal", dtype="int64"),
    "where": where_case,
    "logical_and": binary("logical_and", dtype="bool"),
    "logical_or": binary("logical_or", dtype="bool"),
    "logical_not": unary("logical_not", in_dtype="bool"),
    "take": take(),
    "take_axis1_int32": take((2, 10, 3), (4,), axis=1, dtype="int32"),
    "fused_attention": lambda: attention_case(causal=False, masked=True),
    "fused_attention_causal": lambda: attention_case(causal=True, masked=False),
    "matmul_dequant": lambda: dequant_case(transpose_b=True),
    "matmul_dequant_kn": lambda: dequant_case(transpose_b=False),
    "cache_write": lambda: cache_write(),
}
POSITIVE = {"log", "sqrt", "rsqrt", "pow"}


def test_every_op_has_a_case_and_a_te_function():
    ops = set(OPS) - {"input", "constant", "fused"}
    assert missing_lowerings(backends=["tvm"]) == {}  # a TE function, or a decomposition into ops with one
    covered = {g.ops[0].op for g in (make() for make in OP_CASES.values())}
    assert ops <= covered, f"ops without a test case: {sorted(ops - covered)}"


def cache_write() -> Graph:
    """Two rows into layer 1 of a K/V cache at position 3 (TVM writes them into the cache input's buffer)."""
    b = GraphBuilder("cache_write")
    cache, rows = b.input("cache", (2, 1, 2, 12, 4)), b.input("rows", (1, 2, 2, 4))
    return b.build(b.cache_write(cache, rows, b.constant(np.array([3])), layer=1))


@pytest.mark.filterwarnings("ignore:divide by zero")  # NumPy's own warning for integer x // 0
@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
@pytest.mark.parametrize("case", OP_CASES)
def test_op_matches_interpreter(case: str, schedule):
    graph = OP_CASES[case]()
    assert_matches(graph, random_inputs(graph, positive=case in POSITIVE), schedule)


# == fused groups ====================================================================================
def conv_block(layout: str = "NCHW") -> Graph:
    """conv -> bias_add -> batch_norm -> relu, and a residual add + relu after it."""
    b = GraphBuilder("block")
    x = b.input("x", (1, 8, 10, 10))
    y = b.conv2d(x, const(b, (16, 8, 3, 3), 1), padding=1)
    y = b.bias_add(y, const(b, (16,), 2, "bias"))
    y = b.batch_norm(y, *(const(b, (16,), 3 + k, f"bn{k}", positive=k == 3) for k in range(4)))
    y = b.relu(y)
    z = b.relu(b.conv2d(y, const(b, (16, 16, 1, 1), 7, "w2")))
    return b.build(b.relu(b.add(y, z)))


def call_tir_count(compiled) -> int:
    return len(re.findall(r"R\.call_tir\(", compiled.module["main"].script()))


@pytest.mark.parametrize("schedule", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_operator_fusion_one_kernel_per_group_writes_only_output(schedule):
    graph = OperatorFusionPass(["conv2d_bn_relu"]).apply(conv_block())
    fused = [n for n in graph.ops if n.op == "fused"]
    assert [n.attrs["pattern"] for n in fused] == ["conv2d_bn_relu"]
    compiled = build(graph, schedule=schedule)
    assert compiled.num_kernels == len(graph.ops) == call_tir_count(compiled)
    kernel = compiled.kernels[fused[0]]
    # Only the padding copy is a full buffer; the conv's result lives in a tile (a scalar or one vector).
    intermediates = kernel.intermediates()
    assert set(intermediates) == {"conv2d_pad", "conv2d"}
    assert int(np.prod(intermediates["conv2d"])) <= 16
    x = random_inputs(graph)
    for got, want in zip(compiled(*x), conv_block()(*x)):
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0)


def test_elementwise_fusion_inlines_chain_into_one_kernel():
    b = GraphBuilder("chain")
    x, y = b.input("x", (4, 32)), b.input("y", (32,))
    h = b.sigmoid(b.mul(b.relu(b.add(x, y)), b.constant(np.float32(0.5), "half")))
    g = b.build(b.softmax(b.exp(h)))
    fused = ElementwiseFusionPass().apply(g)
    assert [n.op for n in fused.ops] == ["fused"]
    compiled = build(fused)
    assert compiled.num_kernels == compiled.num_prim_funcs == 1
    kernel = compiled.kernels[fused.ops[0]]
    assert [x.op for x in fused.ops[0].inputs] == ["input", "input", "constant"]  # weights stay outside
    # add, relu, mul, sigmoid, exp are inlined (recomputed where read): only softmax's own stages remain
    # as buffers: its row reductions (and their rfactor partial sums), and its exp(x - max), which it
    # computes once on purpose (te_ops/nn.py); nothing else the size of an elementwise stage
    intermediates = kernel.intermediates()
    assert intermediates and all(name.startswith("softmax") for name in intermediates)
    assert intermediates.pop("softmax_exp") == (4, 32)
    assert all(np.prod(shape) < 4 * 32 for shape in intermediates.values())
    x_in = random_inputs(g)
    np.testing.assert_allclose(compiled(*x_in)[0], g(*x_in)[0], atol=TOL, rtol=0)


def test_constant_inside_a_fused_subgraph_is_lifted():
    sub_b = GraphBuilder("sub")
    p = sub_b.input("p0", (3, 4))
    sub = sub_b.build(sub_b.relu(sub_b.add(p, sub_b.constant(np.arange(4, dtype=np.float32), "c"))))
    b = GraphBuilder("outer")
    x = b.input("x", (3, 4))
    attrs = get_op("fused").normalize_attrs({"subgraph": sub, "pattern": "add_relu"})
    node = b.add_node(Node("fused", (x,), attrs, TensorType((3, 4)), "fused_add_relu"))
    graph = b.build(node)
    assert_matches(graph, random_inputs(graph))


def test_identical_nodes_share_one_prim_func():
    b = GraphBuilder("twice")
    x = b.input("x", (2, 8))
    graph = b.build(b.relu(b.add(b.relu(x), b.relu(b.neg(x)))))
    compiled = build(graph)
    assert compiled.num_kernels == 5 and compiled.num_prim_funcs == 3  # the three relus share one
    assert len(compiled.module.functions) == 1 + compiled.num_prim_funcs


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(max_ops=8))
def test_random_graphs_fused_and_unfused(rg):
    x = rg.random_inputs()
    assert_matches(rg.graph, x)
    assert_matches(ElementwiseFusionPass().apply(rg.graph), x)


# == the zoo, fused or not, in either layout =======================================================
CNNS = ("small_cnn", "resnet18")  # the zoo models with layout-sensitive ops
ZOO_CASES = [
    (name, layout) for name in zoo.names() for layout in ("NCHW", "NHWC", "NCHW8c") if layout == "NCHW" or name in CNNS
]


@pytest.fixture(scope="module")
def zoo_reference():
    """name -> (graph, inputs, interpreter outputs), computed once per model."""
    cache: dict[str, tuple] = {}

    def get(name: str) -> tuple:
        if name not in cache:
            m = zoo.load(name)
            graph, inputs = m.graph(), m.numpy_inputs()
            cache[name] = graph, inputs, graph(*inputs)
        return cache[name]

    return get


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("name, layout", ZOO_CASES)
def test_zoo_model_matches_interpreter(zoo_reference, name: str, layout: str, fusion: str):
    graph, inputs, want = zoo_reference(name)
    if layout != "NCHW":
        graph = MemoryLayoutOptimizer(layout).apply(graph)
        assert any(n.attrs.get("data_layout") == layout for n in graph.ops)
    graph = FUSIONS[fusion](graph)
    compiled = build(graph)
    assert compiled.num_kernels == len(graph.ops)
    for got, ref in zip(compiled(*inputs), want):
        np.testing.assert_allclose(got, ref, atol=TOL, rtol=0)


def test_zoo_small_cnn_unscheduled():
    m = zoo.load("small_cnn")
    inputs = m.numpy_inputs()
    assert_matches(OperatorFusionPass().apply(m.graph()), inputs, schedule=None)


# == the API around it ================================================================================
@pytest.fixture(scope="module")
def mlp():
    m = zoo.load("mlp")
    return build(OperatorFusionPass().apply(m.graph())), m.numpy_inputs()


def test_module_prints_as_tvmscript(mlp):
    compiled, _ = mlp
    text = compiled.module.script()
    assert "R.call_tir" in text and "T.prim_func" in text
    assert call_tir_count(compiled) == compiled.num_kernels


def test_time_returns_seconds(mlp):
    compiled, inputs = mlp
    seconds = compiled.time(*inputs, repeat=3)
    assert 0 < seconds < 1


def test_outputs_are_a_list_of_arrays_for_multiple_outputs():
    b = GraphBuilder("two")
    x = b.input("x", (3,))
    graph = b.build([b.relu(x), x])
    got = build(graph)(np.array([-1.0, 0.5, 2.0], np.float32))
    assert [g.tolist() for g in got] == [[0.0, 0.5, 2.0], [-1.0, 0.5, 2.0]]


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.zeros((1, 784), np.float64),), "expected dtype float32"),
        ((np.zeros((2, 784), np.float32),), r"input %x: expected shape \[1, 784\]"),
        ((), "takes 1 inputs"),
    ],
)
def test_bad_inputs_name_the_input(mlp, args, message):
    compiled, _ = mlp
    with pytest.raises(ValueError, match=message):
        compiled(*args)


def test_unsupported_op_is_named(monkeypatch):
    # gelu's TE function is derived from its scalar definition: take both away
    monkeypatch.delitem(TE_OPS, "gelu")
    monkeypatch.setitem(OPS, "gelu", dataclasses.replace(OPS["gelu"], scalar=None))
    graph = unary("gelu")()
    with pytest.raises(UnsupportedOpError, match=r"node %gelu: op 'gelu' has no TE lowering"):
        build(graph)


def test_bad_target_and_failing_schedule_are_reported():
    graph = unary("relu")()
    with pytest.raises(ValueError, match="target"):
        build(graph, target="cuda")

    def broken(sch, node):
        sch.compute_inline(sch.get_sblock(node.name))  # the output stage cannot be inlined

    with pytest.raises(LoweringError, match="relu"):
        build(graph, schedule=broken)


def test_schedule_hook_sees_every_kernel():
    seen = []
    graph = OperatorFusionPass().apply(conv_block())
    compiled = build(graph, schedule=lambda sch, node: seen.append(node.name))
    assert set(seen) <= {n.name for n in graph.ops}
    assert len(seen) == compiled.num_prim_funcs  # once per distinct kernel


def test_host_target_names_the_cpu():
    target = host_target(2)
    assert target.kind.name == "llvm" and str(target.attrs["mcpu"]) and int(target.attrs["num-cores"]) == 2
