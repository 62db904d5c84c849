"""QuantizeWeights and matmul_dequant: the quantizer's rounding bound, what the pass rewrites (and
leaves), the op's meaning against PyTorch, TVM's fused-dequantize kernel, and an HF LM's logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlc_lab.codegen.tvm import build as tvm_build
from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.ir.ops import OpError, node_cost
from mlc_lab.ir.ops.quant import quantize_per_channel
from mlc_lab.passes import PassManager, QuantizeWeights
from mlc_lab.passes.presets import resolve_passes
from mlc_lab.passes.quantize import error_bound


@settings(max_examples=40, deadline=None)
@given(
    w=arrays(np.float32, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.floats(-1e3, 1e3, width=32)),
    axis=st.sampled_from([0, 1]),
)
def test_per_channel_rounding_moves_each_weight_by_at_most_half_a_step(w, axis):
    q, scales = quantize_per_channel(w, axis)
    assert q.dtype == np.int8 and scales.dtype == np.float32 and scales.shape == (w.shape[axis],)
    assert np.abs(q.astype(np.int32)).max() <= 127
    shaped = scales[:, None] if axis == 0 else scales[None, :]
    assert np.all(np.abs(q * shaped - w) <= shaped / 2 * (1 + 1e-5) + 1e-30)
    peak = np.abs(w).max(axis=1 - axis)
    assert np.all(np.abs(q).max(axis=1 - axis)[peak > 0] == 127)  # each channel uses the whole range


def model_graph(rng, rows=3, k=24, n=40):
    b = GraphBuilder("mlp")
    x = b.input("x", (1, rows, k))
    h = b.relu(b.dense(x, b.constant(rng.standard_normal((n, k)).astype(np.float32), "w1")))
    y = b.matmul(h, b.constant(rng.standard_normal((n, 16)).astype(np.float32), "w2"))
    att = b.matmul(y, b.transpose(y, perm=(0, 2, 1)))  # activation @ activation: stays float32
    return b.build([y, att])


def test_pass_rewrites_constant_weights_only():
    g = model_graph(np.random.default_rng(0))
    q = QuantizeWeights().apply(g)
    ops = [n.op for n in q.ops if n.op != "constant"]
    assert ops.count("matmul_dequant") == 2 and ops.count("matmul") == 1 and "dense" not in ops
    (first, second) = [n for n in q.ops if n.op == "matmul_dequant"]
    assert first.attrs["transpose_b"] and not second.attrs["transpose_b"]
    assert [x.dtype for x in first.inputs] == ["float32", "int8", "float32"]
    assert "matmul_dequant(%x, %w1_int8, %w1_scale) : f32[1, 3, 40]" in str(q)
    untouched = QuantizeWeights(min_elements=10_000).apply(g)
    assert not any(n.op == "matmul_dequant" for n in untouched.ops)


def test_only_int8_is_offered():
    with pytest.raises(ValueError, match="bits=4 is not supported"):
        QuantizeWeights(bits=4)


def test_meaning_equals_pytorch_on_the_dequantized_weight_and_stays_within_the_bound():
    rng = np.random.default_rng(1)
    g = model_graph(rng)
    q = QuantizeWeights().apply(g)
    x = rng.standard_normal((1, 3, 24)).astype(np.float32)
    got, _ = interpret(q, x)
    w1 = next(n for n in q.ops if n.op == "matmul_dequant")
    wq, s = w1.inputs[1].value, w1.inputs[2].value
    dequantized = torch.from_numpy(wq.astype(np.float32) * s[:, None])
    h = torch.relu(torch.nn.functional.linear(torch.from_numpy(x), dequantized))
    w2 = next(n for n in q.ops if n.op == "matmul_dequant" and not n.attrs["transpose_b"])
    want = h @ torch.from_numpy(w2.inputs[1].value.astype(np.float32) * w2.inputs[2].value)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-4)
    # one layer on its own: the change is within sum_k |x_k| * s_n / 2
    b = GraphBuilder("one")
    w = rng.standard_normal((40, 24)).astype(np.float32)
    one = b.build(b.dense(b.input("x", x.shape), b.constant(w, "w")))
    (exact,), (approx,) = interpret(one, x), interpret(QuantizeWeights().apply(one), x)
    _, scales = quantize_per_channel(w, 0)
    assert np.all(np.abs(approx - exact) <= error_bound(x, scales) * (1 + 1e-4))
    assert np.abs(approx - exact).max() > 0  # it did quantize


def test_tvm_kernel_reads_int8_and_equals_the_interpreter():
    rng = np.random.default_rng(2)
    q = QuantizeWeights().apply(model_graph(rng, rows=5, k=64, n=96))
    x = rng.standard_normal((1, 5, 64)).astype(np.float32)
    compiled = tvm_build(q)
    for got, want in zip(compiled(x), interpret(q, x)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    for kernel in compiled.kernels.values():
        if "matmul_dequant" in kernel.name:
            weight = next(x for x in kernel.node.inputs if x.dtype == "int8")
            sizes = [int(np.prod(s)) for s in kernel.intermediates().values()]
            assert all(size < weight.type.numel for size in sizes), kernel.intermediates()  # no float copy of w
            assert "int8" in kernel.script()


def test_cost_reads_a_quarter_of_the_weight_bytes():
    b = GraphBuilder("gemv")
    g = b.build(b.dense(b.input("x", (1, 256)), b.constant(np.ones((512, 256), np.float32), "w")))
    (fp32,) = g.ops[-1:]
    (int8,) = [n for n in QuantizeWeights().apply(g).ops if n.op == "matmul_dequant"]
    assert node_cost(int8).flops == node_cost(fp32).flops
    assert node_cost(int8).bytes_read == 256 * 4 + 512 * 256 + 512 * 4
    assert node_cost(fp32).bytes_read == 256 * 4 + 512 * 256 * 4


def test_type_rule_names_the_problem():
    b = GraphBuilder("bad")
    x = b.input("x", (2, 8))
    w = b.constant(np.zeros((4, 8), np.int8), "w")
    with pytest.raises(OpError, match=r"scales must have shape \[4\]"):
        b.op("matmul_dequant", x, w, b.constant(np.ones(8, np.float32), "s"))
    with pytest.raises(OpError, match="weight must be one of"):
        b.op("matmul_dequant", x, b.constant(np.zeros((4, 8), np.float32), "wf"), b.constant(np.ones(4, np.float32)))


def count_ops(graph, op):
    """Nodes of `op`, inside fused groups too."""
    return sum(count_ops(n.subgraph, op) if n.op == "fused" else n.op == op for n in graph.nodes)


def test_int8_preset_on_an_hf_llama():
    """The "int8" preset on LLaMA's tiny config: every linear layer quantized, logits close to fp32,
    the same next token (interpreter; the TVM kernel is checked above). The imported model is the one
    tests/test_hf_models.py builds (shared in one session)."""
    from test_hf_models import case

    _, (ids,), expected, graph = case("llama")
    passes = resolve_passes("int8", graph, "interpreter")
    assert any(type(p) is QuantizeWeights for p in passes)
    quantized = PassManager(passes).apply(graph)
    linears = sum(n.op == "dense" for n in graph.ops)
    assert linears > 0 and count_ops(quantized, "matmul_dequant") == linears
    want = expected.logits.numpy()
    (got,) = interpret(quantized, ids.numpy())
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
    assert (got[0].argmax(-1) == want[0].argmax(-1)).mean() >= 0.75


@pytest.mark.parametrize("mode", ["fast", "cycle_accurate"])
def test_systolic_array_runs_int8_with_int32_accumulators(mode):
    """A quantized graph on the systolic array: activations quantized per tensor at the array, int8 x int8
    summed in int32 (exactly NumPy's integer product), rescaled; within the rounding bounds of fp32; the
    same (SCALE-Sim) cycles as the fp32 graph."""
    from mlc_lab.backends.custom.systolic import SystolicArrayBackend
    from mlc_lab.sim.systolic_int8 import activation_error_bound, quantize_activations

    rng = np.random.default_rng(4)
    b = GraphBuilder("int8")
    x = b.input("x", (6, 20))
    w = rng.standard_normal((12, 20)).astype(np.float32)
    fp32 = b.build(b.relu(b.dense(x, b.constant(w, "w"))))
    int8 = QuantizeWeights().apply(fp32)
    xs = rng.standard_normal((6, 20)).astype(np.float32)
    array = SystolicArrayBackend(rows=4, cols=4, mode=mode)
    (y_fp32,), report_fp32 = array.execute(array.compile(fp32), [xs])
    program = array.compile(int8)
    (y_int8,), report_int8 = array.execute(program, [xs])
    (node,) = [n for n in program.graph.ops if n.op == "matmul_dequant"]
    w_q, scales = node.inputs[1].value, node.inputs[2].value
    x_q, s_x = quantize_activations(xs)
    assert x_q.dtype == np.int8 and np.abs(x_q.astype(int)).max() == 127
    accumulators = x_q.astype(np.int32) @ w_q.T.astype(np.int32)
    np.testing.assert_array_equal(y_int8, np.maximum(accumulators.astype(np.float32) * (s_x * scales), 0))
    bound = activation_error_bound(xs, w_q, scales, True) + error_bound(xs, scales)
    assert np.all(np.abs(y_int8 - y_fp32) <= bound * (1 + 1e-4)) and np.abs(y_int8 - y_fp32).max() > 0
    assert report_int8.cycles == report_fp32.cycles
    assert [la.compute_cycles for la in report_int8.layers] == [la.compute_cycles for la in report_fp32.layers]
    if mode == "cycle_accurate":
        assert [la.measured_cycles for la in report_int8.layers] == [la.measured_cycles for la in report_fp32.layers]
