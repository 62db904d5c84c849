"""Fusion passes: the right groups, the rules respected, and semantics preserved (differential)."""

import numpy as np
import pytest
from graph_strategies import random_graphs
from hypothesis import given, settings

from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.passes import PassManager
from mlc_lab.passes.fusion import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass, chain, find_matches

RNG = np.random.default_rng(0)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def conv_block(bias=False, layout="NCHW"):
    """conv -> (bias_add) -> bn -> relu -> conv -> add(residual) -> relu -> flatten -> dense -> bias_add."""
    nhwc = layout == "NHWC"
    b = GraphBuilder("block")
    x = b.input("x", (1, 8, 8, 4) if nhwc else (1, 4, 8, 8))
    w1 = f32(4, 4, 3, 3)
    if nhwc:
        w1 = w1.transpose(2, 3, 1, 0).copy()  # HWIO
    conv_attrs = dict(padding=1, data_layout=layout, kernel_layout="HWIO" if nhwc else "OIHW")
    c = b.conv2d(x, b.constant(w1, "w1"), name="conv1", **conv_attrs)
    if bias:
        c = b.bias_add(c, b.constant(f32(4), "b1"), axis=3 if nhwc else 1)
    bn_params = [
        b.constant(v, n) for v, n in [(f32(4), "g"), (f32(4), "beta"), (f32(4), "mean"), (np.abs(f32(4)) + 0.5, "var")]
    ]
    r = b.relu(b.batch_norm(c, *bn_params, axis=3 if nhwc else 1, name="bn1"), name="relu1")
    w2 = f32(4, 4, 3, 3) if not nhwc else f32(3, 3, 4, 4)
    c2 = b.conv2d(r, b.constant(w2, "w2"), name="conv2", **conv_attrs)
    out = b.relu(b.add(c2, x, name="residual"), name="relu2")
    d = b.dense(b.reshape(out, shape=(1, -1)), b.constant(f32(10, 256), "fc"), name="fc")
    return b.build(b.bias_add(d, b.constant(f32(10), "fc_b"), axis=-1, name="logits"))


def assert_same(g1, g2, atol=1e-5):
    x = f32(*g1.inputs[0].type.shape)
    np.testing.assert_allclose(interpret(g2, x)[0], interpret(g1, x)[0], atol=atol, rtol=1e-5)


def test_operator_fusion_finds_the_named_patterns():
    g = conv_block()
    out = OperatorFusionPass(fusion_patterns=["conv2d_bn_relu", "matmul_add"]).apply(g)
    fused = [n for n in out.ops if n.op == "fused"]
    assert [n.attrs["pattern"] for n in fused] == ["conv2d_bn_relu", "matmul_add"]
    assert [m.op for m in fused[0].subgraph.ops] == ["conv2d", "batch_norm", "relu"]
    assert out.op_counts() == {"fused": 2, "conv2d": 1, "add": 1, "relu": 1, "reshape": 1}
    assert_same(g, out)


def test_longer_pattern_wins_and_optional_bias_is_absorbed():
    g = conv_block(bias=True)
    out = OperatorFusionPass(["conv2d_bn", "conv2d_bn_relu", "conv2d_add_relu"]).apply(g)
    patterns = [n.attrs["pattern"] for n in out.ops if n.op == "fused"]
    assert patterns == ["conv2d_bn_relu", "conv2d_add_relu"]
    assert [m.op for m in out.ops[0].subgraph.ops] == ["conv2d", "bias_add", "batch_norm", "relu"]
    assert_same(g, out)


def test_unknown_pattern_is_named():
    with pytest.raises(ValueError, match=r"unknown fusion pattern 'conv_bn'; known patterns: conv2d_bn_relu"):
        OperatorFusionPass(["conv_bn"])


def test_shared_value_is_not_fused():
    b = GraphBuilder()
    x = b.input("x", (2, 4))
    m = b.dense(x, b.constant(f32(3, 4)), name="mm")
    a = b.add(m, b.constant(f32(3)), name="a")
    other = b.relu(m, name="other_user")  # mm has two users: fusing it into `a` would duplicate it
    g = b.build([a, other])
    assert find_matches(g, [chain("matmul_add", "dense", "add")]) == []
    assert ElementwiseFusionPass().apply(g).op_counts() == {"dense": 1, "add": 1, "relu": 1}


def test_graph_output_is_not_hidden():
    b = GraphBuilder()
    x = b.input("x", (2, 4))
    m = b.dense(x, b.constant(f32(3, 4)), name="mm")
    a = b.relu(m)
    g = b.build([m, a])
    assert OperatorFusionPass(["matmul_add_relu", "matmul_add"]).apply(g).op_counts() == {"dense": 1, "relu": 1}
    assert ElementwiseFusionPass().apply(g).op_counts() == {"dense": 1, "relu": 1}


def test_elementwise_fusion_rules():
    b = GraphBuilder()
    x = b.input("x", (4, 8))
    e = b.exp(b.neg(x))  # elementwise chain
    s = b.sum(e, axes=(1,), keepdims=True)  # a reduction ends the group
    after = b.relu(s)  # ... so this starts a new (single-op) group
    m = b.matmul(after, b.constant(f32(1, 5)))  # heavy op starts a group
    t = b.transpose(b.tanh(m))  # heavy op absorbs tanh, but not the injective transpose
    g = b.build(t)
    out = ElementwiseFusionPass().apply(g)
    groups = [n.attrs["pattern"] for n in out.ops if n.op == "fused"]
    assert groups == ["neg+exp+sum", "matmul+tanh"]
    assert out.op_counts() == {"fused": 2, "relu": 1, "transpose": 1}
    assert_same(g, out)


def test_elementwise_fusion_on_conv_block():
    g = conv_block()
    out = ElementwiseFusionPass().apply(g)
    assert [n.attrs["pattern"] for n in out.ops if n.op == "fused"] == [
        "conv2d+batch_norm+relu",
        "conv2d+add+relu",
        "dense+bias_add",
    ]
    assert_same(g, out)


@pytest.mark.parametrize("bias,layout", [(False, "NCHW"), (True, "NCHW"), (True, "NHWC")])
def test_fold_batch_norm(bias, layout):
    g = conv_block(bias, layout)
    out = FoldBatchNorm().apply(g)
    assert "batch_norm" not in out.op_counts()
    assert not {"g", "beta", "mean", "var"} & {n.name for n in out.nodes}, "consumed BN parameters must be dropped"
    assert_same(g, out, atol=1e-4)


def test_fold_batch_norm_leaves_shared_conv_alone():
    b = GraphBuilder()
    x = b.input("x", (1, 2, 4, 4))
    c = b.conv2d(x, b.constant(f32(2, 2, 1, 1)))
    bn = b.batch_norm(c, *(b.constant(np.ones(2, np.float32)) for _ in range(4)))
    g = b.build([bn, b.relu(c)])
    assert FoldBatchNorm().apply(g).op_counts()["batch_norm"] == 1


def test_fused_graph_draws():
    import matplotlib

    matplotlib.use("Agg")
    fig = OperatorFusionPass(["conv2d_bn_relu"]).apply(conv_block()).draw()
    labels = [t.get_text() for t in fig.axes[0].texts]
    assert any(label.startswith("conv2d_bn_relu\n[conv2d + batch_norm + relu]") for label in labels)


@settings(max_examples=150, deadline=None)
@given(random_graphs())
def test_fusion_passes_differential(rg):
    inputs = rg.random_inputs(2)
    ref = interpret(rg.graph, *inputs)[0]
    pipelines = [
        [ElementwiseFusionPass()],
        [OperatorFusionPass(["matmul_add_relu", "matmul_add"])],
        [OperatorFusionPass(["matmul_add"]), ElementwiseFusionPass()],
    ]
    for passes in pipelines:
        out = PassManager(passes).apply(rg.graph)
        np.testing.assert_allclose(interpret(out, *inputs)[0], ref, rtol=1e-6, atol=1e-6)
