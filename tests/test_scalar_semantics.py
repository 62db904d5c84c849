"""Scalar semantics written once: one handler protocol, three handlers (NumPy, TVM TE, MLIR), one formula per op.

The handlers must agree with NumPy on what each primitive means, for floats and integers, NaN and
inf included: checked here through a test-time op that uses every comparison and `where`, run on the
interpreter, TVM and MLIR against NumPy written out by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import special

import mlc_lab
from mlc_lab.ir import GraphBuilder
from mlc_lab.ir.ops import OPS, OpKind, register
from mlc_lab.ir.ops.elementwise import unary_type
from mlc_lab.ir.ops.scalar import NUMPY, PRIMITIVES, NumpyOps, ScalarOps, constant_value

COMPILERS = ["interpreter", "tvm", "mlir"]


def _handlers() -> list[type]:
    from mlc_lab.codegen.mlir.scalar import MLIROps
    from mlc_lab.codegen.tvm.te_ops.elementwise import TEOps

    return [NumpyOps, TEOps, MLIROps]


def test_every_handler_implements_every_primitive():
    assert {"add", "erf", "where", "lt", "cast", "constant"} <= set(PRIMITIVES)
    for handler in _handlers():
        missing = [p for p in PRIMITIVES if getattr(handler, p, None) in (None, getattr(ScalarOps, p))]
        assert not missing, f"{handler.__name__} lacks {missing}"


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        (0.5, "float32", 0.5),
        (2.9, "int32", 2),  # truncates, as NumPy's astype and TVM's const do
        (-2.9, "int32", -2),
        (1e9, "int8", 127),  # saturates: a clip bound past the range clips nothing
        (-1e9, "int8", -128),
        (float("inf"), "int64", np.iinfo(np.int64).max),
        (-3, "bool", True),
        (0.0, "bool", False),
    ],
)
def test_constants_follow_one_rule(value, dtype, expected):
    assert constant_value(value, dtype) == expected
    assert NUMPY.constant(value, dtype).dtype == np.dtype(dtype)


def test_python_numbers_take_the_dtype_of_the_other_operand():
    h = np.arange(4, dtype=np.float16)
    i = np.arange(4, dtype=np.int32)
    assert NUMPY.mul(h, 0.5).dtype == np.float16
    assert NUMPY.add(1, i).dtype == np.int32
    np.testing.assert_array_equal(NUMPY.div(np.array([7, -7], np.int32), 2), [3, -4])  # integer div floors
    b = np.array([True, True, False])
    np.testing.assert_array_equal(NUMPY.add(b, b), [True, True, False])  # bool add is or, as NumPy's
    assert NUMPY.lt(h, 2).dtype == np.bool_


def test_each_formula_is_written_once():
    """gelu's tanh constant appears in one file of the package: its definition in the registry."""
    package = Path(mlc_lab.__file__).parent
    holders = [p.relative_to(package).as_posix() for p in package.rglob("*.py") if "0.044715" in p.read_text()]
    assert holders == ["ir/ops/elementwise.py"]


def test_float16_is_computed_in_float32_and_rounded_once():
    x = np.linspace(-4, 4, 101, dtype=np.float16)
    for op, attrs in [("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}), ("sigmoid", {})]:
        got = OPS[op].compute(x, **attrs)
        assert got.dtype == np.float16
        np.testing.assert_array_equal(got, OPS[op].compute(x.astype(np.float32), **attrs).astype(np.float16))


# -- the primitives on every backend, through an op defined at test time ------------------------------
def piecewise(ops, x):
    """Every comparison and where: -x below 0, x*x up to 3, 100 at 3, x/2 from 4, 5 stays 5, clamps far out."""
    a = ops.where(ops.lt(x, 0), ops.neg(x), ops.mul(x, x))
    b = ops.where(ops.eq(x, 3), 100, a)
    c = ops.where(ops.ge(x, 4), ops.div(x, 2), b)
    d = ops.where(ops.ne(x, 5), c, ops.abs(ops.sub(0, x)))
    e = ops.where(ops.le(x, -4), ops.maximum(x, -6), d)
    return ops.where(ops.gt(x, 9), ops.minimum(x, 9), e)


def piecewise_ref(x: np.ndarray) -> np.ndarray:
    half = x // 2 if x.dtype.kind == "i" else x / 2
    out = np.where(x < 0, -x, x * x)
    out = np.where(x == 3, 100, out)
    out = np.where(x >= 4, half, out)
    out = np.where(x != 5, out, np.abs(0 - x))
    out = np.where(x <= -4, np.maximum(x, -6), out)
    return np.where(x > 9, np.minimum(x, 9), out).astype(x.dtype)


@pytest.fixture(scope="module")
def piecewise_op():
    register("piecewise", OpKind.ELEMWISE, unary_type("piecewise", float_only=False), None, scalar=piecewise)
    yield
    del OPS["piecewise"]


@pytest.mark.parametrize("dtype", ["float32", "int32"])
@pytest.mark.parametrize("backend", COMPILERS)
def test_primitives_agree_on_every_backend(piecewise_op, backend, dtype):
    x = np.arange(-8, 13).astype(dtype)
    if dtype == "float32":
        x = np.concatenate([x, [2.5, -0.5, 4.5, np.nan, np.inf, -np.inf]]).astype(dtype)
    b = GraphBuilder()
    graph = b.build(b.piecewise(b.input("x", x.shape, dtype)))
    got = mlc_lab.compile(graph, backend=backend, passes="none")(x)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, piecewise_ref(x))


@pytest.mark.parametrize("backend", COMPILERS)
def test_erf_keeps_nan_and_matches_scipy(backend):
    """TVM's erf is a polynomial (vectorisable); it must still say erf(nan) = nan and erf(+-inf) = +-1."""
    x = np.concatenate([np.linspace(-5, 5, 41), [np.nan, np.inf, -np.inf, 0.0]]).astype(np.float32)
    b = GraphBuilder()
    graph = b.build(b.erf(b.input("x", x.shape)))
    got = mlc_lab.compile(graph, backend=backend, passes="none")(x)
    np.testing.assert_allclose(got, special.erf(x.astype(np.float64)), rtol=0, atol=5e-7)
