"""MLIR code generation: every op, fused groups and every zoo model, verified by MLIR and run by IREE
(and by the upstream ExecutionEngine), against the reference interpreter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mlc_lab import zoo
from mlc_lab.codegen.mlir import MLIRLoweringError, MLIRVerificationError, build, emit
from mlc_lab.codegen.mlir.execute import compile_jit
from mlc_lab.codegen.mlir.module import parse
from mlc_lab.codegen.mlir.ops import EMITTERS, unsupported_ops
from mlc_lab.ir import GraphBuilder
from mlc_lab.ir import layout as L
from mlc_lab.ir.ops import OPS
from mlc_lab.passes import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.memory.layout import MemoryLayoutOptimizer

RNG = np.random.default_rng(0)
TOL = 1e-4


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def positive(*shape: int) -> np.ndarray:
    return RNG.uniform(0.5, 2.0, shape).astype(np.float32)


def ints(*shape: int) -> np.ndarray:
    return RNG.integers(-9, 10, shape).astype(np.int32)


# (case id, op, input arrays, attributes): every registered op at least once, tricky attributes included
CASES = [
    *[(op, op, [randn(2, 3, 4)], {}) for op in ("relu", "sigmoid", "tanh", "exp", "erf", "silu", "neg", "abs")],
    *[(op, op, [positive(2, 3, 4)], {}) for op in ("log", "sqrt", "rsqrt")],
    ("gelu", "gelu", [randn(2, 8)], {}),
    ("gelu_tanh", "gelu", [randn(2, 8)], {"approximate": "tanh"}),
    ("clip", "clip", [randn(3, 5)], {"min": -0.5, "max": 0.5}),
    ("cast_f2i", "cast", [randn(3, 5) * 4], {"dtype": "int32"}),
    ("cast_i2f", "cast", [ints(3, 5)], {"dtype": "float32"}),
    *[(op, op, [randn(2, 3, 4), randn(3, 1)], {}) for op in ("add", "sub", "mul", "div", "maximum", "minimum")],
    ("pow", "pow", [positive(2, 3), randn(3)], {}),
    ("div_int_floor", "div", [ints(4, 5), np.where(ints(5) == 0, 3, ints(5)).astype(np.int32)], {}),
    ("add_int", "add", [ints(4, 5), ints(4, 1)], {}),
    ("add_f64", "add", [randn(3, 4).astype(np.float64), randn(4).astype(np.float64)], {}),
    ("relu_f16", "relu", [randn(3, 4).astype(np.float16)], {}),
    ("cast_to_bool", "cast", [np.round(randn(3, 4))], {"dtype": "bool"}),
    ("cast_from_bool", "cast", [randn(3, 4) > 0], {"dtype": "float32"}),
    ("max_int", "max", [ints(3, 4)], {"axes": (1,)}),
    ("bias_add_c", "bias_add", [randn(1, 4, 3, 3), randn(4)], {"axis": 1}),
    ("bias_add_last", "bias_add", [randn(2, 5, 6), randn(6)], {"axis": -1}),
    ("batch_norm", "batch_norm", [randn(1, 4, 3, 3), randn(4), randn(4), randn(4), positive(4)], {}),
    ("broadcast_to", "broadcast_to", [randn(3, 1)], {"shape": (2, 3, 4)}),
    ("matmul_2d", "matmul", [randn(5, 7), randn(7, 3)], {}),
    ("matmul_batched", "matmul", [randn(2, 1, 3, 4), randn(3, 4, 5)], {}),
    ("dense", "dense", [randn(2, 3, 8), randn(6, 8)], {}),
    ("conv2d", "conv2d", [randn(1, 3, 8, 8), randn(4, 3, 3, 3)], {}),
    ("conv2d_s2_p1", "conv2d", [randn(2, 3, 9, 8), randn(4, 3, 3, 3)], {"strides": 2, "padding": 1}),
    ("conv2d_dil_asym", "conv2d", [randn(1, 2, 9, 9), randn(3, 2, 3, 3)], {"dilation": 2, "padding": (1, 0, 2, 1)}),
    ("conv2d_groups", "conv2d", [randn(1, 4, 6, 6), randn(6, 2, 3, 3)], {"groups": 2, "padding": 1}),
    (
        "conv2d_nhwc",
        "conv2d",
        [L.to_layout(randn(1, 4, 7, 7), "NCHW", "NHWC"), L.to_layout(randn(8, 4, 3, 3), "OIHW", "HWIO")],
        {"strides": 2, "padding": 1, "data_layout": "NHWC", "kernel_layout": "HWIO"},
    ),
    (
        "conv2d_blocked",
        "conv2d",
        [L.to_layout(randn(1, 8, 6, 6), "NCHW", "NCHW4c"), L.to_layout(randn(8, 8, 3, 3), "OIHW", "OIHW4i2o")],
        {"padding": 1, "data_layout": "NCHW4c", "kernel_layout": "OIHW4i2o"},
    ),
    ("max_pool2d", "max_pool2d", [randn(1, 3, 7, 8)], {"kernel": 3, "strides": 2, "padding": 1, "ceil_mode": True}),
    ("max_pool2d_nhwc", "max_pool2d", [randn(1, 6, 6, 3)], {"kernel": 2, "data_layout": "NHWC"}),
    (
        "avg_pool2d",
        "avg_pool2d",
        [randn(1, 2, 7, 6)],
        {"kernel": 3, "strides": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False},
    ),
    ("avg_pool2d_incl", "avg_pool2d", [randn(1, 2, 7, 6)], {"kernel": 3, "strides": 2, "padding": 1}),
    ("global_avg_pool2d", "global_avg_pool2d", [randn(2, 3, 4, 5)], {}),
    ("global_avg_pool2d_nhwc", "global_avg_pool2d", [randn(2, 4, 5, 3)], {"data_layout": "NHWC"}),
    ("global_avg_pool2d_blocked", "global_avg_pool2d", [randn(1, 2, 4, 4, 4)], {"data_layout": "NCHW4c"}),
    ("layer_norm", "layer_norm", [randn(2, 5, 8), positive(8), randn(8)], {}),
    ("layer_norm_2axes", "layer_norm", [randn(2, 5, 8), positive(5, 8), randn(5, 8)], {"axis": 1}),
    ("softmax", "softmax", [randn(2, 5, 7)], {"axis": 1}),
    ("log_softmax", "log_softmax", [randn(3, 6)], {}),
    ("sum", "sum", [randn(2, 3, 4)], {"axes": (1,), "keepdims": True}),
    ("mean_all", "mean", [randn(2, 3, 4)], {}),
    ("max", "max", [randn(2, 3, 4)], {"axes": (0, 2)}),
    ("min", "min", [randn(2, 3, 4)], {"axes": -1, "keepdims": True}),
    ("reshape", "reshape", [randn(2, 3, 4)], {"shape": (4, -1)}),
    ("transpose", "transpose", [randn(2, 3, 4)], {"perm": (2, 0, 1)}),
    ("concat", "concat", [randn(2, 1, 3), randn(2, 4, 3), randn(2, 2, 3)], {"axis": 1}),
    ("slice", "slice", [randn(5, 8)], {"axes": (0, 1), "starts": (1, -6), "ends": (5, 100), "steps": (2, 3)}),
    ("pad", "pad", [randn(2, 3)], {"pads": (1, 0, 2, 3), "value": 1.5}),
    ("layout_to_blocked", "layout_transform", [randn(1, 8, 3, 2)], {"src_layout": "NCHW", "dst_layout": "NCHW4c"}),
    ("layout_nhwc_to_nchw", "layout_transform", [randn(1, 3, 2, 5)], {"src_layout": "NHWC", "dst_layout": "NCHW"}),
    *[(op, op, [randn(2, 3, 4), randn(3, 1)], {}) for op in ("less", "less_equal", "greater", "greater_equal")],
    *[(op, op, [ints(3, 4), ints(4)], {}) for op in ("equal", "not_equal")],
    ("where", "where", [randn(2, 3, 4) > 0, randn(3, 4), randn(4)], {}),
    ("logical_and", "logical_and", [randn(2, 3) > 0, randn(3) > 0], {}),
    ("logical_or", "logical_or", [randn(2, 3) > 0, randn(3) > 0], {}),
    ("logical_not", "logical_not", [randn(3, 4) > 0], {}),
    ("take", "take", [randn(10, 4), RNG.integers(-10, 10, (2, 3))], {"axis": 0}),
    ("take_axis1_int32", "take", [randn(2, 10, 3), ints(4)], {"axis": 1}),
    ("cache_write", "cache_write", [randn(3, 1, 2, 8, 4), randn(1, 2, 2, 4), np.array([5])], {"layer": 1}),
]
CASE_IDS = [c[0] for c in CASES]


def one_op_graph(op: str, arrays: list[np.ndarray], attrs: dict, node_name: str | None = None):
    b = GraphBuilder(op)
    nodes = [b.input(f"x{i}", a.shape, a.dtype.name) for i, a in enumerate(arrays)]
    return b.build(b.op(op, *nodes, name=node_name, **attrs))


def all_ops_graph():
    """Every case side by side in one graph, so the whole table compiles once."""
    b = GraphBuilder("all_ops")
    outputs, arrays = [], []
    for cid, op, ins, attrs in CASES:
        nodes = [b.input(f"{cid}_x{i}", a.shape, a.dtype.name) for i, a in enumerate(ins)]
        outputs.append(b.op(op, *nodes, name=cid, **attrs))
        arrays += ins
    return b.build(outputs), arrays


@pytest.fixture(scope="module")
def all_ops():
    graph, arrays = all_ops_graph()
    return graph, arrays, graph(*arrays)


@pytest.fixture(scope="module")
def all_ops_iree(all_ops):
    graph, arrays, _ = all_ops
    return build(graph)(*arrays)


def test_every_registered_op_has_an_emitter_and_a_case():
    assert unsupported_ops() == []
    covered = {c[1] for c in CASES}
    assert set(EMITTERS) - {"fused"} <= covered


@pytest.mark.parametrize("cid,op,arrays,attrs", CASES, ids=CASE_IDS)
def test_op_emits_verified_mlir(cid, op, arrays, attrs):
    module = emit(one_op_graph(op, arrays, attrs))
    module.module.operation.verify()
    assert "func.func @main" in str(module)


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_op_compiled_by_iree_equals_interpreter(all_ops, all_ops_iree, index):
    expected = all_ops[2][index]
    got = all_ops_iree[index]
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, atol=TOL, rtol=TOL)


def test_all_ops_through_upstream_pipeline_and_execution_engine(all_ops):
    graph, arrays, expected = all_ops
    got = compile_jit(graph)(*arrays)
    for cid, e, g in zip(CASE_IDS, expected, got):
        np.testing.assert_allclose(g, e, atol=TOL, rtol=TOL, err_msg=cid)


# -- fused groups ---------------------------------------------------------------------------------
def test_elementwise_group_becomes_one_generic():
    b = GraphBuilder("chain")
    x, y, bias = b.input("x", (2, 4, 3, 3)), b.input("y", (3,)), b.input("b", (4,))
    h = b.relu(b.bias_add(b.mul(x, y), bias))
    graph = b.build(b.gelu(b.add(h, b.constant(np.float32(0.5)))))
    fused = ElementwiseFusionPass().apply(graph)
    assert fused.op_counts() == {"fused": 1}
    module = emit(fused)
    assert module.op_counts()["linalg.generic"] == 1
    arrays = [randn(2, 4, 3, 3), randn(3), randn(4)]
    np.testing.assert_allclose(build(fused)(*arrays)[0], graph(*arrays)[0], atol=TOL)


def test_conv_group_becomes_a_private_function_and_a_call():
    model = zoo.load("small_cnn")
    fused = OperatorFusionPass().apply(model.graph())
    assert "fused" in fused.op_counts()
    text = emit(fused).text
    assert "func.func private" in text and "func.call" in text


# -- the zoo, unfused and fused --------------------------------------------------------------------
VARIANTS = {
    "plain": lambda g: g,
    "operator_fusion": lambda g: OperatorFusionPass().apply(g),
    "elementwise_fusion": lambda g: ElementwiseFusionPass().apply(FoldBatchNorm().apply(g)),
}


@pytest.fixture(scope="module", params=zoo.names())
def zoo_model(request):
    return zoo.load(request.param)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_zoo_model_compiled_equals_interpreter(zoo_model, variant):
    graph = VARIANTS[variant](zoo_model.graph())
    inputs = zoo_model.numpy_inputs()
    got = build(graph)(*inputs)
    for g, e in zip(got, zoo_model.graph()(*inputs)):
        np.testing.assert_allclose(g, e, atol=TOL, rtol=TOL)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW8c"])
def test_layout_optimized_cnn_compiled_equals_interpreter(layout):
    model = zoo.load("small_cnn")
    graph = MemoryLayoutOptimizer(layout).apply(FoldBatchNorm().apply(model.graph()))
    graph = ElementwiseFusionPass().apply(graph)
    assert "layout_transform" in str(graph)
    inputs = model.numpy_inputs()
    np.testing.assert_allclose(build(graph)(*inputs)[0], model.graph()(*inputs)[0], atol=TOL, rtol=TOL)


@pytest.mark.parametrize("variant", ["plain", "operator_fusion"])
def test_zoo_model_through_execution_engine(zoo_model, variant):
    inputs = zoo_model.numpy_inputs()
    got = compile_jit(VARIANTS[variant](zoo_model.graph()))(*inputs)
    np.testing.assert_allclose(got[0], zoo_model.graph()(*inputs)[0], atol=TOL, rtol=TOL)


# -- bad input -------------------------------------------------------------------------------------
def test_op_without_lowering_is_named(monkeypatch):
    graph = one_op_graph("softmax", [randn(2, 3)], {})
    monkeypatch.delitem(EMITTERS, "softmax")
    assert "linalg.generic" in emit(graph).text  # no emitter: its decomposition is emitted instead
    monkeypatch.setitem(OPS, "softmax", dataclasses.replace(OPS["softmax"], decompose=None))
    with pytest.raises(MLIRLoweringError, match=r"no MLIR lowering for op 'softmax' \(node %softmax\)"):
        emit(graph)


def test_verifier_diagnostics_name_the_op_and_the_node():
    text = emit(one_op_graph("relu", [randn(2, 3)], {})).text
    # the input's indexing map now reads x[j, i] from a 2x3 tensor over a 2x3 iteration space
    bad = text.replace("affine_map<(d0, d1) -> (d0, d1)>", "affine_map<(d0, d1) -> (d1, d0)>", 1)
    with pytest.raises(MLIRVerificationError) as info:
        parse(bad)
    message = str(info.value)
    assert "linalg.generic" in message and '"relu"' in message
    assert info.value.diagnostics


def test_verifier_errors_from_a_buggy_emitter_are_surfaced(monkeypatch):
    from mlc_lab.codegen.mlir import ops

    def wrong_transpose(f, node, args):  # swaps the permutation but keeps the declared result type
        x = node.inputs[0]
        init = f.empty(node.shape, node.dtype)
        return f.op(
            f"linalg.transpose ins({args[0]} : {ops.tensor_type(x.shape, x.dtype)}) "
            f"outs({init} : {ops.tensor_type(node.shape, node.dtype)}) permutation = [0, 1, 2]"
        )

    monkeypatch.setitem(EMITTERS, "transpose", wrong_transpose)
    with pytest.raises(MLIRVerificationError, match=r"(?s)transpose.*perm_node"):
        emit(one_op_graph("transpose", [randn(2, 3, 4)], {"perm": (2, 0, 1)}, node_name="perm_node"))
