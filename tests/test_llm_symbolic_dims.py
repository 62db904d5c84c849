"""Symbolic dimensions (`SymDim`): types, shape rules, the interpreter's binding, TVM's one-kernel-for-every-length."""

import re

import numpy as np
import pytest

import mlc_lab
from mlc_lab.ir import GraphBuilder, InterpreterError, OpError, interpret
from mlc_lab.ir.types import SymDim, TensorType

N = SymDim("n", upper=32)


def test_symdim_types():
    t = TensorType((1, N, 8))
    assert str(t) == "f32[1, n<=32, 8]" and not t.is_static and t.symbols == {"n": N}
    assert t.numel == 32 * 8 and t.bind({"n": 5}) == TensorType((1, 5, 8))
    assert TensorType((1, SymDim("n", 32))) == TensorType((1, N))
    with pytest.raises(ValueError, match="upper bound must be a positive int"):
        SymDim("n", 0)
    with pytest.raises(ValueError, match="not an identifier"):
        SymDim("2n", 4)


def test_shape_rules():
    b = GraphBuilder()
    x = b.input("x", (N, 8))
    pos = b.input("pos", (N,), "int64")
    mask = b.less_equal(b.reshape(pos, shape=(1, N)), b.reshape(pos, shape=(N, 1)))
    assert mask.shape == (N, N)
    assert b.reshape(x, shape=(1, N, 2, -1)).shape == (1, N, 2, 4)
    assert b.matmul(b.reshape(x, shape=(1, N, 8)), b.constant(np.ones((3, 8, 2), np.float32))).shape == (3, N, 2)
    assert b.slice(x, axes=(1,), starts=(0,), ends=(4,)).shape == (N, 4)
    with pytest.raises(OpError, match=r"do not broadcast"):
        b.add(x, b.constant(np.ones((4, 8), np.float32)))  # n against 4: could differ at run time
    with pytest.raises(OpError, match=r"do not broadcast"):
        b.add(x, b.input("y", (SymDim("m", 32), 8)))
    with pytest.raises(OpError, match=r"symbolic dimensions must stay"):
        b.reshape(x, shape=(2, -1))
    with pytest.raises(OpError, match=r"symbolic size n<=32 cannot be sliced"):
        b.slice(x, axes=(0,), starts=(0,), ends=(2,))


def attention_graph():
    """Causal self-attention of n tokens (one head, d = 8): the shapes a prefill has."""
    rng = np.random.default_rng(0)
    b = GraphBuilder("causal")
    x = b.input("x", (1, N, 8))
    pos = b.input("pos", (N,), "int64")
    q = b.dense(x, b.constant(rng.standard_normal((8, 8)).astype(np.float32)))
    k = b.dense(x, b.constant(rng.standard_normal((8, 8)).astype(np.float32)))
    scores = b.matmul(q, b.transpose(k, perm=(0, 2, 1)))
    causal = b.less_equal(b.reshape(pos, shape=(1, N)), b.reshape(pos, shape=(N, 1)))
    probs = b.softmax(b.where(causal, scores, b.constant(np.float32(-1e30))), axis=-1)
    out = b.reshape(b.matmul(probs, x), shape=(1, N, 2, 4))
    return b.build([out, b.take(out, b.input("last", (1,), "int64"), axis=1)])


def reference(x):
    rng = np.random.default_rng(0)
    wq, wk = (rng.standard_normal((8, 8)).astype(np.float32) for _ in range(2))
    q, k = x @ wq.T, x @ wk.T
    s = q @ k.transpose(0, 2, 1)
    s = np.where(np.tril(np.ones(s.shape[1:], bool)), s, -1e30)
    p = np.exp(s - s.max(-1, keepdims=True))
    out = ((p / p.sum(-1, keepdims=True)) @ x).reshape(1, -1, 2, 4)
    return out, out[:, -1:]


def inputs(n):
    return np.random.default_rng(n).standard_normal((1, n, 8)).astype(np.float32), np.arange(n), np.array([n - 1])


def test_costs_count_symbolic_dims_at_their_bound():
    from mlc_lab.ir import node_cost

    g = attention_graph()
    scores, mixed = [n for n in g.ops if n.op == "matmul"]
    assert node_cost(scores).flops == 2 * 32 * 32 * 8 and node_cost(mixed).flops == 2 * 32 * 8 * 32
    assert all(node_cost(n).flops >= 0 for n in g.ops)


def test_interpreter_binds_lengths_and_checks_bounds():
    g = attention_graph()
    for n in (1, 5, 32):
        for got, want in zip(interpret(g, *inputs(n)), reference(inputs(n)[0])):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    x, pos, last = inputs(33)
    with pytest.raises(InterpreterError, match=r"input %x: axis 1 has size 33, above the bound .* n<=32"):
        interpret(g, x, pos, last)
    with pytest.raises(InterpreterError, match=r"input %pos: axis 0 has size 4, but symbolic dimension 'n' is 5"):
        interpret(g, inputs(5)[0], np.arange(4), np.array([0]))


def test_tvm_builds_once_and_runs_every_length():
    g = attention_graph()
    compiled = mlc_lab.compile(g, backend="tvm")
    kernels = compiled.runner.compiled.prim_funcs()
    symbolic = {name for name, f in kernels.items() if re.search(r"T\.Buffer\(\([^)]*\bn\b", f.script())}
    assert symbolic == set(kernels)  # every kernel of this graph touches n-long data: n is a TIR variable in each
    for n in (1, 7, 32):
        for got, want in zip(compiled.run_numpy(*inputs(n)), interpret(g, *inputs(n))):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"above the bound"):
        compiled.run_numpy(*inputs(33))


def test_mlir_builds_once_and_runs_every_length():
    """MLIR writes n as `?` (it used to refuse SymDims; tests/test_mlir_dynamic_dims.py has the details)."""
    g = attention_graph()
    compiled = mlc_lab.compile(g, backend="mlir")
    from mlc_lab.codegen.mlir import emit

    assert "%x: tensor<1x?x8xf32>" in emit(compiled.optimized).text
    for n in (1, 7, 32):
        for got, want in zip(compiled.run_numpy(*inputs(n)), interpret(g, *inputs(n))):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"above the bound"):
        compiled.run_numpy(*inputs(33))


def test_text_form_round_trips():
    from mlc_lab.ir import constant_payloads, format_graph, parse_graph
    from mlc_lab.ir.equality import graphs_equal

    g = attention_graph()
    text = format_graph(g)
    assert "%x: f32[1, n<=32, 8]" in text and "shape=[1, n<=32, 2, 4]" in text
    assert graphs_equal(parse_graph(text, constants=constant_payloads(g)), g)


def test_verifier_wants_one_bound_per_symbol():
    from mlc_lab.ir import VerificationError

    b = GraphBuilder("g")
    x, y = b.input("x", (N, 4)), b.input("y", (SymDim("n", 64), 4))
    with pytest.raises(VerificationError, match=r"symbolic dimension 'n' has bound (32|64) here, (64|32) elsewhere"):
        b.build([b.relu(x), b.relu(y)])
