"""Regression tests for issue 11's shapes-and-dtypes cases: each once found by an adversarial user.

0-d tensors in and out, reductions over empty axes, int64/int32/bool/float64 through TVM and MLIR
with their dtypes kept, integer pow, in-place aten ops, and dict/namedtuple outputs. References are
PyTorch (what the model means) and the interpreter; dtypes and shapes are compared, not only values.
"""

from __future__ import annotations

import collections
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import mlc_lab
from mlc_lab.ir import GraphBuilder, OpError, interpret

COMPILED = ["interpreter", "tvm", "mlir"]
EVERY_BACKEND = [*COMPILED, "systolic", "cerebras", "dataflow"]


def same(got, want) -> None:
    """Same type, dtype, shape and values (NaN equals NaN)."""
    got = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert (got.dtype, got.shape) == (want.dtype, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs):
        return self.fn(*xs)


def compile_torch(fn, *example, backend):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mlc_lab.compile(Fn(fn), example, backend=backend)


# == 0-d tensors ===================================================================================
@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_zero_d_output_stays_zero_d(backend):
    x = torch.randn(3)
    got = compile_torch(lambda x: x.sum(), x, backend=backend)(x)
    assert isinstance(got, torch.Tensor) and got.shape == ()
    same(got, x.sum())


@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_zero_d_input(backend):
    b = GraphBuilder()
    x = b.input("x", ())
    graph = b.build([b.mul(b.relu(x), b.constant(np.array(3.0, np.float32)))])
    compiled = mlc_lab.compile(graph, backend=backend, passes="none")
    for value in (-2.0, 1.5):
        same(compiled(np.array(value, np.float32)), np.array(max(value, 0) * 3, np.float32))


# == empty axes ====================================================================================
@pytest.mark.parametrize("backend", EVERY_BACKEND)
def test_empty_axes_reduce_to_the_identity(backend):
    x, w = torch.zeros(3, 0), torch.zeros(0, 2)
    model = compile_torch(lambda x, w: (x.sum(1), x @ w, x.mean(1), x.sum(0)), x, w, backend=backend)
    for got, want in zip(model(x, w), (x.sum(1), x @ w, x.mean(1), x.sum(0))):
        same(got, want)  # 0, zeros, NaN (PyTorch's mean of nothing), an empty result


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
def test_linear_and_conv_with_no_input_features(backend):
    b = GraphBuilder()
    x, c = b.input("x", (2, 0)), b.input("c", (1, 0, 4, 4))
    w = b.constant(np.zeros((3, 0), np.float32))
    k = b.constant(np.zeros((5, 0, 3, 3), np.float32))
    graph = b.build([b.dense(x, w), b.conv2d(c, k, padding=1), b.global_avg_pool2d(b.input("e", (1, 2, 0, 3)))])
    inputs = [np.zeros((2, 0), np.float32), np.zeros((1, 0, 4, 4), np.float32), np.zeros((1, 2, 0, 3), np.float32)]
    got = mlc_lab.compile(graph, backend=backend, passes="none").runner(*inputs)
    for g, want in zip(got, interpret(graph, *inputs)):
        same(g, want)
    assert not got[0].any() and not got[1].any() and np.isnan(got[2]).all()


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
def test_fused_linear_with_no_input_features_is_its_bias(backend):
    """dense + bias_add + relu fused into one kernel: with K = 0 the result is relu(bias) on every row."""
    from mlc_lab.passes import OperatorFusionPass
    from mlc_lab.passes.fusion import PATTERNS

    b = GraphBuilder()
    x, w = b.input("x", (3, 0)), b.constant(np.zeros((4, 0), np.float32))
    bias = b.constant(np.array([-1, 0, 1, 2], np.float32))
    graph = OperatorFusionPass(list(PATTERNS)).apply(b.build(b.relu(b.bias_add(b.dense(x, w), bias, axis=-1))))
    assert graph.op_counts() == {"fused": 1}
    got = mlc_lab.compile(graph, backend=backend, passes="none")(np.zeros((3, 0), np.float32))
    same(got, np.tile(np.array([0, 0, 1, 2], np.float32), (3, 1)))


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_of_an_empty_axis_is_a_compile_time_error(op):
    """PyTorch raises ("Expected reduction dim 0 to have non-zero size"): so does the IR, naming node and shape."""
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        getattr(torch.zeros(0, 3), f"a{op}")(0)
    b = GraphBuilder()
    with pytest.raises(OpError, match=rf"node %{op}: {op}: cannot reduce the empty axis 0 of \[0, 3\]"):
        getattr(b, op)(b.input("x", (0, 3)), axes=(0,))


def test_integer_mean_of_an_empty_axis_is_an_error():
    b = GraphBuilder()
    with pytest.raises(OpError, match=r"mean: the mean of an empty axis of int64\[2, 0\] is NaN"):
        b.mean(b.input("x", (2, 0), "int64"), axes=(1,))


# == dtypes through TVM and MLIR ===================================================================
CASES = {
    "int64 + 1": (lambda x: x + 1, torch.arange(-3, 4)),
    "int32 * 3 - 2": (lambda x: x * 3 - 2, torch.arange(-3, 4, dtype=torch.int32)),
    "int64 0-d": (lambda x: x * 2 + 1, torch.tensor(5)),
    "float64 * 2.5": (lambda x: x * 2.5 + 0.1, torch.randn(2, 3, dtype=torch.float64)),
    "float64 0-d exp": (lambda x: torch.exp(x) * 0.5, torch.tensor(0.3, dtype=torch.float64)),
    "int pow": (lambda x: x**3, torch.arange(-4, 5)),
    "int floor division": (lambda x: (x // 3, torch.div(x, -2, rounding_mode="floor")), torch.arange(-7, 8)),
    "int32 pow 0": (lambda x: x**0, torch.arange(-2, 3, dtype=torch.int32)),
    "int sum/max": (lambda x: (x.sum(1), x.amax(0), x.amin()), torch.tensor([[1, -2, 3], [4, 5, -7]])),
    "bool ops": (lambda x: (x + x, torch.maximum(x, x), x.sum(), x.to(torch.float32)), torch.tensor([1, 0, 1]) > 0),
    "bool constant": (lambda x: x * torch.tensor([True, False, True]), torch.tensor([1, 1, 0]) > 0),
}


def _all_cases(*xs):
    """Every case of CASES in one model (one compilation per backend), results keyed by case."""
    return {name: fn(x) for (name, (fn, _)), x in zip(CASES.items(), xs)}


@pytest.mark.parametrize("backend", COMPILED)
def test_dtypes_are_preserved(backend):
    inputs = [x for _, x in CASES.values()]
    model = compile_torch(_all_cases, *(x.clone() for x in inputs), backend=backend)
    got, want = model(*(x.clone() for x in inputs)), _all_cases(*(x.clone() for x in inputs))
    assert list(got) == list(CASES)
    for name in CASES:
        g, w = got[name], want[name]
        for gi, wi in zip(g if isinstance(g, tuple) else (g,), w if isinstance(w, tuple) else (w,), strict=True):
            try:
                same(gi, wi)
            except AssertionError as e:
                raise AssertionError(f"{name} on {backend}: {e}") from None


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
def test_integer_pow_matches_pytorch(backend):
    """Wraparound on overflow and PyTorch's answers for negative exponents (0, except for bases 1 and -1)."""
    base = np.array([-3, -1, 0, 1, 2, 3, 7], np.int64)
    exponents = (-1, -2, 0, 5, 40)
    b = GraphBuilder()
    x = b.input("x", base.shape, "int64")
    graph = b.build([b.pow(x, b.constant(np.array(e, np.int64))) for e in exponents])  # one compilation
    got = mlc_lab.compile(graph, backend=backend, passes="none")(base)
    for g, e, want in zip(got, exponents, interpret(graph, base)):
        same(g, torch.pow(torch.from_numpy(base), torch.tensor(e)))
        same(g, want)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int8"])
def test_integer_pow_with_a_tensor_exponent(dtype):
    """Exponents only known at run time (negative, 0, large enough to wrap around), on every compiler."""
    base = np.array([-3, -1, 0, 1, 2, 3, 7, 5], dtype)
    exponent = np.array([-1, 3, 0, -2, 5, 64, 40, 100], dtype)
    want = torch.pow(torch.from_numpy(base), torch.from_numpy(exponent))
    b = GraphBuilder()
    graph = b.build(b.pow(b.input("x", (8,), dtype), b.input("e", (8,), dtype)))
    same(interpret(graph, base, exponent)[0], want)
    for backend in ("tvm", "mlir"):
        same(mlc_lab.compile(graph, backend=backend, passes="none")(base, exponent), want)


def test_float64_math_on_mlir():
    """IREE links no libm: tanh is expanded (to float64 accuracy, tiny arguments included), erf refused clearly."""
    x = np.array([-30, -2, -1e-3, -1e-7, 0, 3e-4, 1e-3, 2.5])
    b = GraphBuilder()
    v = b.input("x", x.shape, "float64")
    graph = b.build([b.tanh(v), b.gelu(v, approximate="tanh")])
    for got, want in zip(mlc_lab.compile(graph, backend="mlir", passes="none")(x), interpret(graph, x)):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    b = GraphBuilder()
    graph = b.build(b.gelu(b.input("x", x.shape, "float64")))
    with pytest.raises(NotImplementedError, match=r"node %gelu \(gelu\): erf on float64 is not supported"):
        mlc_lab.compile(graph, backend="mlir", passes="none")


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
def test_x_minus_x_keeps_nan_and_inf(backend):
    """Found by the typed fuzz: TVM's simplifier folded x - x to 0 and (x + 1) - x to 1 inside a fused kernel."""
    from mlc_lab.passes import ElementwiseFusionPass

    b = GraphBuilder()
    x = b.input("x", (4,))
    one = b.constant(np.array(1.0, np.float32))
    graph = ElementwiseFusionPass().apply(b.build([b.add(b.sub(x, x), one), b.sub(b.add(x, one), x)]))
    values = np.array([np.nan, np.inf, -np.inf, 2.0], np.float32)
    got = mlc_lab.compile(graph, backend=backend, passes="none").runner(values)
    for g, want in zip(got, interpret(graph, values)):
        same(g, want)
        assert np.isnan(g[:3]).all()


@pytest.mark.parametrize("n", [3, 16, 17, 100])
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_mlir_integer_sum_of_a_folded_constant(n, dtype):
    """sum(x * 0 + 1) over n elements is n; unguarded, IREE 3.13's CPU code gave 1 for 3 (16 for 16, 2 for 17)."""
    b = GraphBuilder()
    x = b.input("x", (n,), dtype)
    one = b.add(b.mul(x, b.constant(np.array(0, dtype))), b.constant(np.array(1, dtype)))
    powered = b.pow(x, b.constant(np.array(0, dtype)))
    graph = b.build(
        [
            b.sum(one, axes=(0,)),
            b.sum(powered, axes=(0,)),
            b.matmul(b.reshape(one, shape=(1, n)), b.reshape(powered, shape=(n, 1))),
        ]
    )
    got = mlc_lab.compile(graph, backend="mlir", passes="none")(np.arange(n, dtype=dtype) - 2)
    for g, want in zip(got, interpret(graph, np.arange(n, dtype=dtype) - 2)):
        same(g, want)
    same(got[0], np.array(n, dtype))


@pytest.mark.parametrize("op", ["neg", "sub", "div", "pow", "abs"])
def test_bool_arithmetic_torch_refuses_is_refused(op):
    b = GraphBuilder()
    x = b.input("x", (3,), "bool")
    with pytest.raises(OpError, match=rf"{op}: not defined for bool tensors"):
        b.op(op, *([x] if op in ("neg", "abs") else [x, x]))


# == in-place aten ops =============================================================================
class InPlaceNet(nn.Module):
    """nn.ReLU(inplace=True), an in-place residual, an in-place dropout and activation after BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 4)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.2, inplace=True)
        self.conv, self.bn = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x, image):
        h = self.relu(self.fc(x))
        h.add_(x)  # residual, in place
        h = self.drop(h).mul_(2).sigmoid_()
        y = self.bn(self.conv(image)).relu_().clamp_(max=0.5)
        return h, y


@pytest.mark.parametrize("backend", COMPILED)
def test_in_place_ops_are_functionalised(backend):
    x, image = torch.randn(2, 4), torch.randn(1, 3, 6, 6)
    model = InPlaceNet().eval()
    compiled = mlc_lab.compile(model, (x.clone(), image.clone()), backend=backend)
    for got, want in zip(compiled(x.clone(), image.clone()), model(x.clone(), image.clone())):
        same(got, want)


def test_zoo_cnn_with_in_place_relu():
    """The book's small CNN with nn.ReLU(inplace=True) everywhere, through the default passes (BN folding)."""
    from mlc_lab import zoo

    model = zoo.load("small_cnn")
    for m in model.module.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    (want,) = model.torch_outputs()
    compiled = mlc_lab.compile(model.module, model.example_inputs, backend="tvm")
    np.testing.assert_allclose(compiled(*model.numpy_inputs()), want, rtol=1e-4, atol=1e-5)
    assert "batch_norm" not in compiled.optimized.op_counts()  # folded into the convolutions, as without inplace


class MutatesInput(nn.Module):
    def forward(self, x):
        x.add_(1)  # the caller's tensor changes, as in eager PyTorch
        h = x * 2
        h[0].sub_(5)  # a write through a view (select), functionalised as select_scatter
        h[:, 1:3].relu_()  # and through a slice
        return h


@pytest.mark.parametrize("backend", COMPILED)
def test_a_model_that_mutates_its_input(backend):
    x = torch.randn(3, 4)
    compiled = mlc_lab.compile(MutatesInput(), x.clone(), backend=backend)
    eager_x, compiled_x = x.clone(), x.clone()
    want = MutatesInput()(eager_x)
    same(compiled(compiled_x), want)
    same(compiled_x, eager_x)  # the input was updated in place, as PyTorch did
    numpy_x = x.numpy().copy()
    compiled(numpy_x)
    same(numpy_x, eager_x)
    read_only = x.numpy().copy()
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"mutates input 0 \(%x\) in place"):
        compiled(read_only)


# == structured outputs ============================================================================
Pair = collections.namedtuple("Pair", "total parts")


class Structured(nn.Module):
    def forward(self, x):
        return {"double": x * 2, "pair": Pair(x.sum(), (x + 1, [x.amax()]))}


@pytest.mark.parametrize("backend", COMPILED)
def test_dict_and_namedtuple_outputs_keep_their_structure(backend):
    x = torch.randn(3)
    got, want = mlc_lab.compile(Structured(), x, backend=backend)(x), Structured()(x)
    assert isinstance(got, dict) and list(got) == ["double", "pair"]
    assert isinstance(got["pair"], Pair) and isinstance(got["pair"].parts, tuple)
    assert isinstance(got["pair"].parts[1], list)
    same(got["double"], want["double"])
    same(got["pair"].total, want["pair"].total)
    same(got["pair"].parts[0], want["pair"].parts[0])
    same(got["pair"].parts[1][0], want["pair"].parts[1][0])


def test_one_element_tuple_stays_a_tuple():
    x = torch.randn(3)
    got = mlc_lab.compile(Fn(lambda x: (x + 1,)), x, backend="interpreter")(x)
    assert isinstance(got, tuple) and len(got) == 1
    same(got[0], x + 1)


@pytest.mark.parametrize("reduce", ["sum", "matmul"])
def test_mlir_float_reduction_of_a_folded_bool(reduce):
    """sum(float(b | True)) over 3 is 3: IREE folds b | True to a splat and, unguarded, its sum gave 1."""
    b = GraphBuilder()
    x = b.input("x", (2, 3), "bool")
    ones = b.cast(b.add(x, b.constant(np.array(True))), dtype="float32")
    if reduce == "sum":
        graph = b.build(b.sum(ones, axes=(1,)))
    else:
        graph = b.build(b.matmul(ones, b.constant(np.arange(6, dtype=np.float32).reshape(3, 2))))
    inputs = np.array([[True, False, True], [False, False, True]])
    same(mlc_lab.compile(graph, backend="mlir", passes="none")(inputs), interpret(graph, inputs)[0])
