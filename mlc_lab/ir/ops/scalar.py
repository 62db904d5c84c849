"""Scalar semantics written once: elementwise ops as functions over a handler of scalar primitives.

An elementwise op's meaning is one Python function over `ops`, a handler of primitives:

    def gelu(ops, x, approximate):
        return ops.mul(ops.mul(x, 0.5), ops.add(1.0, ops.erf(ops.mul(x, SQRT1_2))))

Each backend implements the primitives once (the design of PyTorch Inductor's ops handler and
tinygrad's ALU renderers): `NumpyOps` here (the interpreter's compute, on whole arrays), a TE handler
in `mlc_lab.codegen.tvm.te_ops.elementwise` (on TIR scalar expressions) and an MLIR handler in
`mlc_lab.codegen.mlir.scalar` (writing `arith`/`math` lines of a `linalg.generic` body). So the
formula of gelu exists once, and a new elementwise op needs no backend code at all.

Conventions every handler keeps:
- a Python number next to a value becomes a constant of that value's dtype (`ops.mul(x, 0.5)`);
- values keep their dtype: arithmetic on int/bool stays int/bool (integer `div` floors, and gives 0
  for a zero divisor on the compiled backends; bool `add`/`mul`/`maximum`/`minimum` are or/and/or/and,
  as in NumPy); `maximum`/`minimum` propagate NaN; comparisons give bool; `cast` changes the dtype;
- `sub` and `neg` are not defined on bool (the type rules refuse those ops before any handler runs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from scipy import special

#: 1 / sqrt(2) and sqrt(2 / pi), the constants of the two gelu formulas.
SQRT1_2 = 1 / math.sqrt(2)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)

Value = Any  # an array (NumPy), a TIR expression (TE) or an SSA name (MLIR)
Operand = Value | int | float | bool  # Python numbers are constants of the other operand's dtype

#: `fn(ops, *inputs, **attrs) -> value`: the meaning of one elementwise op.
ScalarFn = Callable[..., Value]


class ScalarOps(Protocol):
    """The primitives an elementwise op may use. Each handler implements all of them."""

    def constant(self, value: float, dtype: str) -> Value: ...
    def dtype(self, x: Value) -> str: ...
    def cast(self, x: Value, dtype: str) -> Value: ...
    def where(self, cond: Value, a: Operand, b: Operand) -> Value: ...

    def neg(self, x: Value) -> Value: ...
    def abs(self, x: Value) -> Value: ...
    def exp(self, x: Value) -> Value: ...
    def log(self, x: Value) -> Value: ...
    def sqrt(self, x: Value) -> Value: ...
    def rsqrt(self, x: Value) -> Value: ...
    def erf(self, x: Value) -> Value: ...
    def tanh(self, x: Value) -> Value: ...

    def add(self, a: Operand, b: Operand) -> Value: ...
    def sub(self, a: Operand, b: Operand) -> Value: ...
    def mul(self, a: Operand, b: Operand) -> Value: ...
    def div(self, a: Operand, b: Operand) -> Value: ...
    def maximum(self, a: Operand, b: Operand) -> Value: ...
    def minimum(self, a: Operand, b: Operand) -> Value: ...
    def pow(self, a: Operand, b: Operand) -> Value: ...

    def lt(self, a: Operand, b: Operand) -> Value: ...
    def le(self, a: Operand, b: Operand) -> Value: ...
    def gt(self, a: Operand, b: Operand) -> Value: ...
    def ge(self, a: Operand, b: Operand) -> Value: ...
    def eq(self, a: Operand, b: Operand) -> Value: ...
    def ne(self, a: Operand, b: Operand) -> Value: ...


#: The primitive names every handler implements (read off the protocol, for coverage checks).
PRIMITIVES: tuple[str, ...] = tuple(name for name in vars(ScalarOps) if not name.startswith("_"))


def is_number(x: object) -> bool:
    return isinstance(x, (int, float, bool, np.number, np.bool_))


def constant_value(value: float, dtype: str) -> float | int | bool:
    """A number as a constant of `dtype`, the one rule all handlers use.

    Integers truncate toward zero and saturate at the dtype's range (so a clip bound of 1e9 on int8
    clips nothing, as NumPy's clip says); bool is the number's truth.
    """
    if dtype == "bool":
        return bool(value)
    if dtype.startswith("float"):
        return float(value)
    info = np.iinfo(dtype)
    if math.isnan(value):
        return 0
    if math.isinf(value):
        return info.max if value > 0 else info.min
    return int(min(max(int(value), info.min), info.max))


class Handler:
    """Shared plumbing: turn Python numbers into constants of the other operand's dtype."""

    def dtype(self, x: Value) -> str:
        raise NotImplementedError

    def constant(self, value: float, dtype: str) -> Value:
        raise NotImplementedError

    def lift(self, a: Operand, b: Operand) -> tuple[Value, Value]:
        """Both operands as values; a number takes the dtype of the other (float32 if both are numbers)."""
        if is_number(a) and is_number(b):
            return self.constant(a, "float32"), self.constant(b, "float32")
        if is_number(a):
            return self.constant(a, self.dtype(b)), b
        if is_number(b):
            return a, self.constant(b, self.dtype(a))
        return a, b


def int_pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PyTorch's integer pow: exact with wraparound; a negative exponent gives 0 except for bases 1 and -1.

    (np.power raises on negative integer exponents, and PyTorch does not for a tensor exponent.)
    """
    a, b = np.broadcast_arrays(a, b)
    result, base, exp = np.ones_like(a), a.copy(), np.where(b < 0, 0, b)
    with np.errstate(over="ignore"):
        while np.any(exp):
            result = np.where(exp & 1, result * base, result)
            base, exp = base * base, exp >> 1
    unit = np.where(a == 1, 1, np.where(a == -1, np.where(b & 1, -1, 1), 0)).astype(a.dtype)
    return np.where(b < 0, unit, result).astype(a.dtype)


def _float(x: np.ndarray) -> bool:
    return x.dtype.kind == "f"


class NumpyOps(Handler):
    """The reference handler: whole NumPy arrays, each result in its operand's dtype (the interpreter's meaning)."""

    def constant(self, value: float, dtype: str) -> np.ndarray:
        return np.asarray(constant_value(value, dtype), dtype=dtype)

    def dtype(self, x: np.ndarray) -> str:
        return np.asarray(x).dtype.name

    def cast(self, x: np.ndarray, dtype: str) -> np.ndarray:
        return np.asarray(x).astype(dtype)

    def where(self, cond: np.ndarray, a: Operand, b: Operand) -> np.ndarray:
        a, b = self.lift(a, b)
        return np.where(cond, a, b).astype(a.dtype, copy=False)

    def _same(self, fn: Callable[..., np.ndarray], *args: np.ndarray) -> np.ndarray:
        return np.asarray(fn(*args)).astype(args[0].dtype, copy=False)

    def neg(self, x):
        return self._same(np.negative, x)

    def abs(self, x):
        return self._same(np.abs, x)

    def exp(self, x):
        return self._same(np.exp, x)

    def log(self, x):
        return self._same(np.log, x)

    def sqrt(self, x):
        return self._same(np.sqrt, x)

    def rsqrt(self, x):
        return self._same(lambda v: 1 / np.sqrt(v), x)

    def erf(self, x):
        return self._same(special.erf, x)

    def tanh(self, x):
        return self._same(np.tanh, x)

    def _binary(self, fn: Callable[..., np.ndarray], a: Operand, b: Operand) -> np.ndarray:
        a, b = self.lift(a, b)
        return self._same(fn, a, b)

    def add(self, a, b):
        return self._binary(np.add, a, b)

    def sub(self, a, b):
        return self._binary(np.subtract, a, b)

    def mul(self, a, b):
        return self._binary(np.multiply, a, b)

    def div(self, a, b):
        a, b = self.lift(a, b)
        return self._same(np.divide if _float(a) else np.floor_divide, a, b)

    def maximum(self, a, b):
        return self._binary(np.maximum, a, b)

    def minimum(self, a, b):
        return self._binary(np.minimum, a, b)

    def pow(self, a, b):
        a, b = self.lift(a, b)
        return self._same(np.power if _float(a) else int_pow, a, b)

    def _compare(self, fn: Callable[..., np.ndarray], a: Operand, b: Operand) -> np.ndarray:
        a, b = self.lift(a, b)
        return np.asarray(fn(a, b))

    def lt(self, a, b):
        return self._compare(np.less, a, b)

    def le(self, a, b):
        return self._compare(np.less_equal, a, b)

    def gt(self, a, b):
        return self._compare(np.greater, a, b)

    def ge(self, a, b):
        return self._compare(np.greater_equal, a, b)

    def eq(self, a, b):
        return self._compare(np.equal, a, b)

    def ne(self, a, b):
        return self._compare(np.not_equal, a, b)


NUMPY = NumpyOps()


def numpy_compute(
    fn: ScalarFn, channelwise: bool = False, out_dtype: Callable[..., str] | None = None
) -> Callable[..., np.ndarray]:
    """The interpreter's compute of an op defined by `fn`: the NumPy handler on whole arrays.

    `channelwise`: inputs after the first are 1-D and read along `attrs["axis"]` of the first
    (bias_add, batch_norm), so they are reshaped to broadcast there. float16 is computed in float32
    and rounded once at the end (PyTorch's "opmath"), so the reference does not pile up a rounding
    per primitive; `out_dtype(arrays, attrs)` names the result's dtype for that. Overflow to inf
    (exp of a large number inside sigmoid) is the answer, not an accident: no warning.
    """

    def compute(*inputs: np.ndarray, **attrs: Any) -> np.ndarray:
        arrays = [np.asarray(x) for x in inputs]
        final = None
        if out_dtype is not None and any(a.dtype == np.float16 for a in arrays):
            final = out_dtype(arrays, attrs)
            arrays = [a.astype(np.float32) if a.dtype == np.float16 else a for a in arrays]
        if channelwise:
            x = arrays[0]
            shape = (-1,) + (1,) * (x.ndim - attrs["axis"] % x.ndim - 1)
            arrays = [x, *(p.reshape(shape) for p in arrays[1:])]
        with np.errstate(over="ignore", under="ignore"):
            result = np.asarray(fn(NUMPY, *arrays, **attrs))
        return result if final is None else result.astype(final)

    compute.__name__ = compute.__qualname__ = getattr(fn, "__name__", "scalar_compute")
    compute.__doc__ = fn.__doc__
    return compute
