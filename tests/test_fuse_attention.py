"""FuseAttention and the fused_attention op: what the pass matches (and must not), its meaning on the
interpreter, TVM's online-softmax kernel against PyTorch's SDPA, MLIR through the decomposition, and the
registry's traffic count."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mlc_lab.codegen.tvm import build as tvm_build
from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.ir.ops import OpError, node_cost
from mlc_lab.ir.ops.attention import causal_mask
from mlc_lab.passes import ElementwiseFusionPass, FuseAttention
from mlc_lab.passes.presets import default_passes


def sdpa_graph(batch, q_len, k_len, depth, *, scale_form="mul", mask=None, causal=False, safe=False, axis=-1):
    """The unfused attention as the torch frontend writes SDPA (optionally in its other spellings)."""
    b = GraphBuilder("sdpa")
    q = b.input("q", (*batch, q_len, depth))
    k = b.input("k", (*batch, k_len, depth))
    v = b.input("v", (*batch, k_len, depth))
    rank = len(batch) + 2
    s = b.matmul(q, b.transpose(k, perm=(*range(rank - 2), rank - 1, rank - 2)))
    c = b.constant(np.float32(1 / math.sqrt(depth) if scale_form != "div" else math.sqrt(depth)), "scale")
    s = {"mul": lambda: b.mul(s, c), "rmul": lambda: b.mul(c, s), "div": lambda: b.div(s, c), "none": lambda: s}[
        scale_form
    ]()
    if causal:
        s = b.add(s, b.constant(causal_mask(q_len, k_len), "causal_mask"))
    if mask is not None:
        m = b.input("mask", mask)
        s = b.add(m, s)
    p = b.softmax(s, axis=axis)
    if safe:  # as the frontend: rows blocked by the mask (read from the mask, not the scores) become 0
        blocked = b.equal(b.max(m, axes=(-1,), keepdims=True), b.constant(np.float32(-np.inf), "ninf"))
        p = b.where(blocked, b.constant(np.float32(0), "zero"), p)
    return b.build(b.matmul(p, v))


def inputs_for(graph, seed=0, masked_fraction=0.3):
    rng = np.random.default_rng(seed)
    arrays = []
    for x in graph.inputs:
        if x.name == "mask":
            blocked = rng.random(x.shape) < masked_fraction
            arrays.append(np.where(blocked, -np.inf, rng.standard_normal(x.shape)).astype(np.float32))
        else:
            arrays.append(rng.standard_normal(x.shape, dtype=np.float32))
    return arrays


def fused_ops(graph):
    return [n for n in graph.ops if n.op != "constant"]


def test_pass_turns_sdpa_into_one_node_with_causal_detected():
    g = sdpa_graph((1, 2), 8, 8, 16, causal=True)
    after = FuseAttention().apply(g)
    (node,) = fused_ops(after)
    assert node.op == "fused_attention"
    assert node.attrs == {"scale": pytest.approx(0.25), "causal": True}
    assert len(node.inputs) == 3  # the causal constant is gone: no [S, S] mask is read
    assert "fused_attention(%q, %k, %v) {scale=0.25, causal=true}" in str(after)


@pytest.mark.parametrize("scale_form", ["mul", "rmul", "div", "none"])
def test_every_scale_spelling_and_a_mask_in_either_operand_order(scale_form):
    g = sdpa_graph((2, 3), 5, 7, 8, scale_form=scale_form, mask=(2, 1, 5, 7))
    after = FuseAttention().apply(g)
    (node,) = fused_ops(after)
    expected = {"mul": 1 / math.sqrt(8), "rmul": 1 / math.sqrt(8), "div": 1 / math.sqrt(8), "none": 1.0}
    assert node.attrs["scale"] == pytest.approx(expected[scale_form], rel=1e-6)
    assert not node.attrs["causal"] and len(node.inputs) == 4
    xs = inputs_for(g)
    np.testing.assert_allclose(interpret(after, *xs)[0], interpret(g, *xs)[0], rtol=1e-6, atol=1e-6)


def test_safe_softmax_where_moves_after_the_product():
    g = sdpa_graph((1, 2), 6, 6, 8, mask=(1, 1, 6, 6), safe=True)
    after = FuseAttention().apply(g)
    assert [n.op for n in after.ops if n.op in ("fused_attention", "where", "softmax")] == ["fused_attention", "where"]
    xs = inputs_for(g, masked_fraction=0.9)  # most rows fully masked: the where must zero them
    want, got = interpret(g, *xs)[0], interpret(after, *xs)[0]
    assert np.isnan(want).sum() == 0 and (want == 0).all(axis=-1).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "case",
    ["softmax over the query axis", "scores used twice", "probabilities used twice", "scale not a constant"],
)
def test_no_match(case):
    b = GraphBuilder("near_miss")
    q, k, v = (b.input(n, (1, 2, 6, 8)) for n in "qkv")
    scale = b.input("alpha", ()) if case == "scale not a constant" else b.constant(np.float32(0.3), "scale")
    s = b.mul(b.matmul(q, b.transpose(k, perm=(0, 1, 3, 2))), scale)
    outputs = []
    if case == "scores used twice":
        outputs.append(b.relu(s))
    p = b.softmax(s, axis=-2 if case == "softmax over the query axis" else -1)
    if case == "probabilities used twice":
        outputs.append(p)
    g = b.build([b.matmul(p, v), *outputs])
    after = FuseAttention().apply(g)
    assert not any(n.op == "fused_attention" for n in after.ops)
    assert str(after) == str(g)


@settings(max_examples=20, deadline=None)
@given(
    batch=st.sampled_from([(1,), (2,), (1, 3), (2, 2)]),
    q_len=st.integers(1, 12),
    k_len=st.integers(1, 12),
    depth=st.sampled_from([1, 4, 8]),
    causal=st.booleans(),
    masked=st.booleans(),
    scale_form=st.sampled_from(["mul", "div"]),
)
def test_fused_equals_unfused_on_the_interpreter(batch, q_len, k_len, depth, causal, masked, scale_form):
    mask = (batch[0], *(1,) * (len(batch) - 1), q_len, k_len) if masked else None  # broadcast over heads
    g = sdpa_graph(batch, q_len, k_len, depth, causal=causal, mask=mask, scale_form=scale_form)
    after = FuseAttention().apply(g)
    (node,) = [n for n in after.ops if n.op == "fused_attention"]
    assert node.attrs["causal"] == (causal and True)
    xs = inputs_for(g, seed=q_len * 31 + k_len)
    want, got = interpret(g, *xs)[0], interpret(after, *xs)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(np.nan_to_num(got), np.nan_to_num(want), rtol=1e-5, atol=1e-6)


def test_tvm_kernel_equals_pytorch_sdpa():
    """One TVM build holding several attention kernels (odd lengths, decode, masks, causal), each
    against torch's scaled_dot_product_attention in fp32 to 1e-5."""
    rng = np.random.default_rng(1)
    cases = [  # (batch, q_len, k_len, depth, causal, mask shape)
        ((1, 2), 70, 70, 16, True, None),  # tails in both blocks
        ((1, 4), 1, 33, 8, True, None),  # decode: one query sees every key
        ((2, 2), 9, 130, 32, False, (2, 1, 1, 130)),  # padding-style mask, 3 key blocks
        ((3,), 17, 17, 64, False, (17, 17)),
    ]
    b = GraphBuilder("many")
    outs, refs, arrays = [], [], []
    for n, (batch, q_len, k_len, depth, causal, mshape) in enumerate(cases):
        shapes = [(*batch, q_len, depth), (*batch, k_len, depth), (*batch, k_len, depth)]
        xs = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        nodes = [b.input(f"{name}{n}", s) for name, s in zip("qkv", shapes)]
        mask = None
        if mshape is not None:
            mask = np.where(rng.random(mshape) < 0.3, -np.inf, 0.5 * rng.standard_normal(mshape)).astype(np.float32)
            mask[..., 0] = 0  # every row sees a key (torch's SDPA and ours agree on NaN rows; this tests values)
            nodes.append(b.input(f"m{n}", mshape))
            xs.append(mask)
        scale = 1 / math.sqrt(depth)
        outs.append(b.op("fused_attention", *nodes, scale=scale, causal=causal))
        arrays += xs
        tq, tk, tv = (torch.from_numpy(x) for x in xs[:3])
        attn = torch.from_numpy(mask) if mask is not None else None
        if causal:  # torch's is_causal aligns top-left; ours bottom-right: give torch the mask
            attn = torch.from_numpy(causal_mask(q_len, k_len))
        refs.append(torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=attn, scale=scale).numpy())
    g = b.build(outs)
    compiled = tvm_build(g)
    assert sum(k.name.startswith("fused_attention") for k in compiled.kernels.values()) == len(cases)
    for got, want, interp in zip(compiled(*arrays), refs, interpret(g, *arrays)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(interp, want, rtol=1e-5, atol=1e-5)


def test_fully_masked_rows_give_nan_like_the_unfused_softmax():
    g = sdpa_graph((1, 1), 4, 70, 8, mask=(1, 1, 4, 70))
    xs = inputs_for(g)
    xs[-1][0, 0, 1, :] = -np.inf
    want = interpret(g, *xs)[0]
    got = tvm_build(FuseAttention().apply(g))(*xs)[0]
    assert np.isnan(want[0, 0, 1]).all() and np.isnan(got[0, 0, 1]).all()
    np.testing.assert_allclose(np.delete(got, 1, axis=2), np.delete(want, 1, axis=2), rtol=1e-5, atol=1e-6)


def test_mlir_runs_it_through_the_decomposition():
    from mlc_lab.codegen.mlir import build as mlir_build

    g = FuseAttention().apply(sdpa_graph((1, 2), 5, 6, 8, causal=True, mask=(1, 1, 5, 6)))
    assert any(n.op == "fused_attention" for n in g.ops)
    xs = inputs_for(g, masked_fraction=0.0)
    np.testing.assert_allclose(mlir_build(g)(*xs)[0], interpret(g, *xs)[0], rtol=1e-5, atol=1e-6)


def test_cost_counts_no_score_matrix():
    g = ElementwiseFusionPass().apply(sdpa_graph((1, 4), 256, 256, 64, causal=True))
    fused = FuseAttention().apply(sdpa_graph((1, 4), 256, 256, 64, causal=True))
    (node,) = fused_ops(fused)
    cost = node_cost(node)
    qkv = 3 * 4 * 256 * 64 * 4
    assert (cost.bytes_read, cost.bytes_written) == (qkv, 4 * 256 * 64 * 4)
    unfused = sum(node_cost(n).bytes for n in g.ops if n.op != "constant")
    assert unfused > cost.bytes + 2 * 4 * 256 * 256 * 4  # the scores are written and read back at least once
    assert cost.flops == 4 * 256 * 256 * (2 * 64 + 2 * 64 + 5)


def test_type_rule_names_the_problem():
    b = GraphBuilder("bad")
    q, k, v = b.input("q", (1, 2, 4, 8)), b.input("k", (1, 3, 4, 8)), b.input("v", (1, 3, 4, 8))
    with pytest.raises(OpError, match="batch dimensions"):
        b.op("fused_attention", q, k, v, scale=1.0)
    with pytest.raises(OpError, match="mask .* does not broadcast"):
        b.op("fused_attention", q, q, q, b.input("m", (1, 2, 4, 5)), scale=1.0)


def test_default_preset_fuses_causal_and_decode_attention_on_tvm_only():
    from mlc_lab.passes import PassManager

    def fused_by_preset(g, backend="tvm"):
        return any(n.op == "fused_attention" for n in PassManager(default_passes(g, backend)).apply(g).ops)

    assert fused_by_preset(sdpa_graph((1, 2), 8, 8, 16, causal=True))
    assert fused_by_preset(sdpa_graph((1, 2), 1, 30, 16, mask=(1, 1, 1, 30)))  # decode: one query
    assert not fused_by_preset(sdpa_graph((1, 2), 8, 8, 16, mask=(1, 1, 8, 8)))  # dense prefill: measured slower
    assert FuseAttention().apply(sdpa_graph((1, 2), 8, 8, 16, mask=(1, 1, 8, 8))).ops[-1].op == "fused_attention"
    assert not fused_by_preset(sdpa_graph((1, 2), 8, 8, 16, causal=True), "mlir")


def gqa_decode_graph(fill: float):
    """The LLM decoder's attention (mlc_lab.llm.decoder): 2 k/v heads each serving 2 query heads without
    repeating k/v (size-1 group axis), k^T as a reshape of a transpose, masking by where(visible, s, fill)."""
    b = GraphBuilder("gqa")
    q = b.input("q", (1, 2, 2, 1, 8))  # batch, kv heads, group, one new token, depth
    k, v = b.input("k", (1, 2, 40, 8)), b.input("v", (1, 2, 40, 8))
    visible = b.input("visible", (1, 1, 1, 1, 40), "bool")
    k_t = b.reshape(b.transpose(k, perm=(0, 1, 3, 2)), shape=(1, 2, 1, 8, 40))
    s = b.mul(b.matmul(q, k_t), b.constant(np.float32(0.35), "scale"))
    s = b.where(visible, s, b.constant(np.float32(fill), "masked"))
    p = b.softmax(s, axis=-1)
    return b.build(b.matmul(p, b.reshape(v, shape=(1, 2, 1, 40, 8))))


def test_grouped_query_decode_attention_fuses_and_runs_on_tvm():
    g = gqa_decode_graph(-1e30)
    after = FuseAttention().apply(g)
    (node,) = [n for n in after.ops if n.op == "fused_attention"]
    assert [x.shape for x in node.inputs[:3]] == [(1, 2, 2, 1, 8), (1, 2, 1, 40, 8), (1, 2, 1, 40, 8)]
    assert not any(n.op in ("softmax", "transpose") for n in after.ops)  # k is read as stored, not copied
    rng = np.random.default_rng(7)
    visible = np.zeros((1, 1, 1, 1, 40), bool)
    visible[..., :23] = True  # the first 23 cache rows are filled
    xs = [rng.standard_normal(x.shape, dtype=np.float32) for x in g.inputs[:3]] + [visible]
    want = interpret(g, *xs)[0]
    np.testing.assert_allclose(interpret(after, *xs)[0], want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(tvm_build(after)(*xs)[0], want, rtol=1e-5, atol=1e-6)


def test_where_with_a_fill_that_is_not_blocking_is_left_alone():
    g = gqa_decode_graph(-5.0)  # exp(-5 - max) is not 0: not a mask, the rewrite would change the result
    assert not any(n.op == "fused_attention" for n in FuseAttention().apply(g).ops)
