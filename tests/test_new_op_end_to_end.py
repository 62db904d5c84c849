"""A new op end to end, registered here at test time with no backend code: it runs on every backend.

`softplus` is defined by its scalar formula (`scalar=`), `mish` only by a decomposition into softplus,
tanh and mul (`decompose=`); the torch and ONNX frontends get one table line each. Every result is
compared with NumPy's formula (and the frontends' with PyTorch and onnxruntime). The coverage check
names what an op lacks for a backend, and passes once a decomposition covers it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mlc_lab
from mlc_lab.api import BACKENDS, import_model
from mlc_lab.ir import GraphBuilder
from mlc_lab.ir.ops import OPS, OpKind, register
from mlc_lab.ir.ops.elementwise import unary_type
from mlc_lab.ir.parser import parse_graph
from mlc_lab.op_coverage import OpCoverageError, check_op_coverage, missing_lowerings
from mlc_lab.passes import Decompose
from mlc_lab.passes.decompose import DecompositionError

RTOL, ATOL = 2e-5, 1e-5


# -- the whole contribution: two registry entries -------------------------------------------------
def softplus(ops, x, beta, threshold):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (PyTorch's definition)."""
    bx = ops.mul(x, beta)
    return ops.where(ops.gt(bx, threshold), x, ops.div(ops.log(ops.add(1, ops.exp(bx))), beta))


def mish(b, x):
    """x * tanh(softplus(x))."""
    return b.mul(x, b.tanh(b.softplus(x)))


@pytest.fixture(scope="module", autouse=True)
def new_ops():
    register(
        "softplus",
        OpKind.ELEMWISE,
        unary_type("softplus"),
        None,
        scalar=softplus,
        attrs={"beta": 1.0, "threshold": 20.0},
        doc="log(1 + exp(beta x)) / beta; linear above threshold",
    )
    register("mish", OpKind.ELEMWISE, unary_type("mish"), None, decompose=mish, doc="x * tanh(softplus(x))")
    yield
    del OPS["mish"], OPS["softplus"]


def softplus_ref(x: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    x64 = x.astype(np.float64)
    return np.where(beta * x64 > threshold, x64, np.log1p(np.exp(beta * x64)) / beta)


def mish_ref(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float64) * np.tanh(softplus_ref(x))


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16)).astype(np.float32) * 6
    x[0, :4] = [25.0, -30.0, 0.0, 19.5]  # both sides of softplus's threshold, and far negative
    w = rng.standard_normal((16, 16)).astype(np.float32) / 4
    return x, w


def _model():
    """dense -> mish -> softplus(beta=2): a GEMM for the accelerators, both new ops after it."""
    x, w = _inputs()
    b = GraphBuilder("new_ops")
    xin = b.input("x", x.shape)
    h = b.mish(b.dense(xin, b.constant(w, name="w")))
    graph = b.build(b.softplus(h, beta=2.0, threshold=20.0))
    expected = softplus_ref(mish_ref(x @ w.T).astype(np.float32), beta=2.0)
    return graph, x, expected


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_the_new_ops_run_on_every_backend(backend):
    graph, x, expected = _model()
    compiled = mlc_lab.compile(graph, backend=backend)
    np.testing.assert_allclose(compiled(x), expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
def test_unfused_new_ops_on_the_compilers(backend):
    graph, x, expected = _model()
    np.testing.assert_allclose(
        mlc_lab.compile(graph, backend=backend, passes="none")(x), expected, rtol=RTOL, atol=ATOL
    )


def test_the_ops_stay_graph_nodes_until_a_backend_decomposes_them():
    graph, x, expected = _model()
    assert graph.op_counts()["mish"] == 1  # fusion and the chapters see mish itself
    lowered = Decompose().apply(graph)
    assert "mish" not in lowered.op_counts() and lowered.op_counts()["softplus"] == 2  # softplus has no decomposition
    assert Decompose(keep={"mish"}).apply(graph) is graph  # nothing to do: the same graph back
    np.testing.assert_allclose(lowered(x)[0], expected, rtol=RTOL, atol=ATOL)


def test_decompose_reads_as_ir_text():
    before = parse_graph(
        """graph probs(%x: f32[4, 8]) -> (f32[4, 8]) {
  %p = softmax(%x) : f32[4, 8]
  return %p
}"""
    )
    assert str(Decompose().apply(before)) == (
        """graph probs(%x: f32[4, 8]) -> (f32[4, 8]) {
  %p_max = max(%x) {axes=[-1], keepdims=true} : f32[4, 1]
  %p_sub = sub(%x, %p_max) : f32[4, 8]
  %p_exp = exp(%p_sub) : f32[4, 8]
  %p_sum = sum(%p_exp) {axes=[-1], keepdims=true} : f32[4, 1]
  %p = div(%p_exp, %p_sum) : f32[4, 8]
  return %p
}"""
    )
    assert str(Decompose(keep={"softmax"}).apply(before)) == str(before)


def test_mish_and_softplus_from_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    from mlc_lab.frontends import torch as torch_frontend
    from mlc_lab.frontends.base import same

    aten = torch.ops.aten
    monkeypatch.setitem(torch_frontend.ATEN_OPS, aten.mish.default, same("mish"))
    monkeypatch.setitem(torch_frontend.ATEN_OPS, aten.softplus.default, same("softplus", "beta", "threshold"))
    model = torch.nn.Sequential(torch.nn.Mish(), torch.nn.Softplus(beta=2.0, threshold=10.0))
    x = torch.from_numpy(_inputs()[0])
    graph = import_model(model, (x,))
    assert {"mish", "softplus"} <= set(graph.op_counts())
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(graph(x.numpy())[0], expected, rtol=RTOL, atol=ATOL)


def test_mish_and_softplus_from_onnx(monkeypatch):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    from mlc_lab.frontends.base import same
    from mlc_lab.frontends.onnx import ONNX_OPS, OnnxOp

    monkeypatch.setitem(ONNX_OPS, "Mish", OnnxOp(same("mish"), 22))
    monkeypatch.setitem(ONNX_OPS, "Softplus", OnnxOp(same("softplus"), 22))
    x = _inputs()[0]
    nodes = [helper.make_node("Mish", ["x"], ["h"]), helper.make_node("Softplus", ["h"], ["y"])]
    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, list(x.shape))  # noqa: E731
    model = helper.make_model(
        helper.make_graph(nodes, "new_ops", [value("x")], [value("y")]), opset_imports=[helper.make_opsetid("", 18)]
    )
    onnx.checker.check_model(model)
    graph = import_model(model)
    assert {"mish", "softplus"} <= set(graph.op_counts())
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    np.testing.assert_allclose(graph(x)[0], expected, rtol=RTOL, atol=ATOL)


# -- what a backend needs, checked ----------------------------------------------------------------
def test_every_registered_op_runs_on_every_backend():
    check_op_coverage()  # the registry as shipped, plus softplus and mish


def test_an_op_without_what_a_backend_needs_is_named_until_a_decomposition_covers_it(monkeypatch):
    compute_only = register(
        "cube", OpKind.ELEMWISE, unary_type("cube"), lambda x: (x * x * x).astype(x.dtype), doc="x ** 3"
    )
    del OPS["cube"]
    monkeypatch.setitem(OPS, "cube", compute_only)  # unregistered again when the test ends
    assert missing_lowerings(["cube"]) == {"tvm": ["cube"], "mlir": ["cube"]}  # NumPy runs it; compilers cannot
    with pytest.raises(OpCoverageError) as info:
        check_op_coverage(["cube"])
    assert "tvm: op 'cube' needs a TE function (mlc_lab.codegen.tvm TE_OPS) or a scalar definition" in str(info.value)
    assert "mlir: op 'cube' needs an MLIR emitter" in str(info.value)
    assert "or a decomposition (decompose=)" in str(info.value)

    monkeypatch.setitem(OPS, "cube", dataclasses.replace(compute_only, decompose=lambda b, x: b.mul(x, b.mul(x, x))))
    check_op_coverage(["cube"])
    b = GraphBuilder()
    x = b.input("x", (5,))
    graph = b.build(b.cube(x))
    xs = np.linspace(-2, 2, 5, dtype=np.float32)
    np.testing.assert_allclose(mlc_lab.compile(graph, backend="tvm")(xs), xs**3, rtol=1e-6)


def test_a_decomposition_of_the_wrong_type_or_one_that_never_ends_is_named(monkeypatch):
    monkeypatch.setitem(OPS, "mish", dataclasses.replace(OPS["mish"], decompose=lambda b, x: b.cast(x, dtype="int32")))
    graph, _, _ = _model()
    with pytest.raises(DecompositionError, match=r"node %mish: mish: its decomposition gives i32\[8, 16\]"):
        Decompose().apply(graph)
    monkeypatch.setitem(OPS, "mish", dataclasses.replace(OPS["mish"], decompose=lambda b, x: b.mish(x)))
    with pytest.raises(DecompositionError, match=r"decomposing mish did not end after 16 rounds"):
        Decompose().apply(graph)
