"""The MLIR backend with dynamic dimensions: a `SymDim` becomes `?`, one compiled artifact runs every length.

Both runtimes are checked (IREE, and the upstream pipeline + ExecutionEngine), against the interpreter,
with outputs whose shapes depend on the length; the LLM prefill is checked on IREE through
`compile_causal_lm(backend="mlir")`. Static graphs emit as before: the FileCheck and static tests
(tests/test_codegen_mlir*.py) hold that.
"""

import re

import numpy as np
import pytest

from mlc_lab.codegen.mlir import MLIRLoweringError, emit
from mlc_lab.codegen.mlir.execute import compile_iree, compile_jit
from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.ir.types import SymDim

N = SymDim("n", upper=16)
LENGTHS = (1, 6, 16)


def dynamic_graph():
    """dense -> rope-like slice/neg/concat -> masked softmax attention -> reshape/transpose -> take -> layer norm:
    the ops a prefill uses, each on an n-long axis; two outputs of run-time shape, one static."""
    rng = np.random.default_rng(0)
    const = lambda *shape: b.constant(rng.standard_normal(shape).astype(np.float32))  # noqa: E731
    b = GraphBuilder("dynamic")
    x = b.input("x", (1, N, 8))
    pos = b.input("pos", (N,), "int64")
    last = b.input("last", (1,), "int64")
    q = b.dense(x, const(8, 8))
    half = b.slice(q, axes=(2,), starts=(4,), ends=(8,))
    q = b.add(q, b.concat(b.neg(half), b.slice(q, axes=(2,), starts=(0,), ends=(4,)), axis=2))
    scores = b.matmul(q, b.transpose(x, perm=(0, 2, 1)))
    causal = b.less_equal(b.reshape(pos, shape=(1, N)), b.reshape(pos, shape=(N, 1)))
    probs = b.softmax(b.where(causal, scores, b.constant(np.float32(-1e30))), axis=-1)
    heads = b.transpose(b.reshape(b.matmul(probs, x), shape=(1, N, 2, 4)), perm=(0, 2, 1, 3))  # [1, 2, n, 4]
    normed = b.layer_norm(b.reshape(heads, shape=(2, N, 4)), const(4), const(4), axis=-1)
    rows = b.take(normed, b.minimum(b.constant(np.arange(4, dtype=np.int64)), last), axis=1)  # [2, 4, 4]
    return b.build([normed, b.sum(probs, axes=(1,)), rows])


def inputs(n):
    x = np.random.default_rng(n).standard_normal((1, n, 8)).astype(np.float32)
    return x, np.arange(n), np.array([n - 1])


def test_text_has_dynamic_dims_taken_once():
    g = dynamic_graph()
    text = emit(g).text
    assert "func.func @main(%x: tensor<1x?x8xf32>, %pos: tensor<?xi64>, %last: tensor<1xi64>)" in text
    assert "-> (tensor<2x?x4xf32>, tensor<1x?xf32>, tensor<2x4x4xf32>)" in text
    assert len(re.findall(r"= tensor\.dim ", text)) == 1  # n: once, from %x (the first argument carrying it)
    assert re.search(r"tensor\.empty\(%n\) : tensor<1x\?x8xf32>", text)
    assert re.search(r"tensor\.expand_shape .* output_shape \[1, %n, 2, 4\]", text)


@pytest.mark.parametrize("runtime", ["iree", "jit"])
def test_one_artifact_runs_every_length(runtime):
    g = dynamic_graph()
    run = compile_iree(emit(g), graph=g) if runtime == "iree" else compile_jit(g)
    for n in LENGTHS:
        got, want = run(*inputs(n)), interpret(g, *inputs(n))
        assert [o.shape for o in got] == [(2, n, 4), (1, n), (2, 4, 4)]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"input %x: axis 1 has size 17, above the bound .* n<=16"):
        run(*inputs(17))
    with pytest.raises(ValueError, match=r"input %pos: axis 0 has size 3, but symbolic dimension 'n' is 5"):
        run(inputs(5)[0], np.arange(3), np.array([0]))


def test_op_without_dynamic_support_is_refused_by_name():
    b = GraphBuilder("mean_over_n")
    x = b.input("x", (1, N, 8))
    g = b.build([b.mean(x, axes=(1,), name="avg")])
    with pytest.raises(MLIRLoweringError, match=r"op 'mean' \(node %avg\) with a dynamic axis 1 \(size n<=16\)"):
        emit(g)


def test_llm_prefill_on_mlir_runs_each_prompt_at_its_length():
    from mlc_lab.llm import compile_causal_lm
    from mlc_lab.llm.examples import example_model

    lm = compile_causal_lm(example_model("llama"), backend="mlir", max_seq_len=24)
    assert not lm.pads_prompt and "tensor<1x?xi64>" in emit(lm.prefill.optimized).text
    for n in (2, 9, 24):
        ids = np.random.default_rng(n).integers(0, lm.spec.vocab, (1, n))
        args = ids, np.arange(n), np.array([n - 1])
        for a, b in zip(lm.prefill_step(*args), interpret(lm.prefill.optimized, *args)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"input %ids: axis 1 has size 25, above the bound"):
        lm.prefill.run_numpy(np.zeros((1, 25), np.int64), np.arange(25), np.array([24]))


def cache_graph(t: int):
    b = GraphBuilder("write")
    cache, rows = b.input("cache", (3, 1, 2, 8, 4)), b.input("rows", (1, 2, t, 4))
    return b.build(b.cache_write(cache, rows, b.input("position", (1,), "int64"), layer=1))


@pytest.mark.parametrize("t, position", [(1, 0), (2, 3), (2, 6), (8, 0)])
def test_cache_write_is_one_insert_slice(t, position):
    g = cache_graph(t)
    text = emit(g).text
    assert "tensor.insert_slice" in text and "linalg.generic" not in text and "arith.select" not in text
    rng = np.random.default_rng(t)
    cache, rows = rng.standard_normal((3, 1, 2, 8, 4)).astype(np.float32), rng.standard_normal((1, 2, t, 4))
    args = cache, rows.astype(np.float32), np.array([position])
    want = interpret(g, *args)[0]
    for run in (compile_iree(emit(g), graph=g), compile_jit(g)):
        np.testing.assert_array_equal(run(*args)[0], want)
    np.testing.assert_array_equal(args[0], cache)  # NumPy in: the caller's cache is not written


def test_iree_writes_the_cache_argument_in_place():
    """Measured, not assumed: given an IREE device array, the insert_slice result is the argument's own buffer."""
    import iree.runtime as rt

    g = cache_graph(1)
    fn = rt.load_vm_flatbuffer(compile_iree(emit(g)).vmfb, driver="local-sync")["main"]
    cache = rt.asdevicearray(rt.get_device("local-sync"), np.zeros((3, 1, 2, 8, 4), np.float32))
    out = fn(cache, np.ones((1, 2, 1, 4), np.float32), np.array([2])).to_host()
    assert out.ctypes.data == cache.to_host().ctypes.data and (out[1, 0, :, 2] == 1).all() and out.sum() == 8
