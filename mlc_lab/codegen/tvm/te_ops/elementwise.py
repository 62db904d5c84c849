"""Elementwise and broadcasting ops: one te.compute each, the scalar formula of the op's NumPy meaning."""

from __future__ import annotations

import math
from collections.abc import Callable

import tvm
from tvm import te, topi

from mlc_lab.codegen.tvm.te_ops.registry import (
    MATERIALIZE_TAG,
    broadcast_index,
    compute,
    const,
    nan_max,
    nan_min,
    te_op,
)
from mlc_lab.ir.types import TensorType

Scalar = tvm.tirx.Expr


def _sigmoid(x: Scalar) -> Scalar:
    one = const(1.0, x.dtype)
    return one / (one + te.exp(-x))


def _gelu_tanh(x: Scalar) -> Scalar:
    inner = const(math.sqrt(2 / math.pi), x.dtype) * (x + const(0.044715, x.dtype) * x * x * x)
    return const(0.5, x.dtype) * x * (const(1.0, x.dtype) + te.tanh(inner))


_UNARY: dict[str, Callable[[Scalar], Scalar]] = {
    "relu": lambda x: nan_max(x, const(0, x.dtype)),
    "sigmoid": _sigmoid,
    "tanh": te.tanh,
    "exp": te.exp,
    "log": te.log,
    "sqrt": te.sqrt,
    "rsqrt": lambda x: const(1.0, x.dtype) / te.sqrt(x),  # as the interpreter computes it: 1 / sqrt(x)
    "silu": lambda x: x * _sigmoid(x),
    "neg": lambda x: -x,
    "abs": te.abs,
}


def _unary(op: str) -> Callable[..., te.Tensor]:
    scalar = _UNARY[op]

    def unary(x: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
        return compute(x.shape, lambda *i: scalar(x[*i]), name=name)

    return unary


for _op in _UNARY:
    te_op(_op)(_unary(_op))


def erf_stage(x: te.Tensor, name: str) -> te.Tensor:
    """erf(x) as its own (elementwise, hence later inlined) stage.

    For float32 it is TOPI's `fast_erf`, a rational approximation (max error 3e-7 measured against
    scipy) that LLVM vectorises. `te.erf` becomes a call to the C library's erff per element, which
    no vectoriser touches: 60x slower here (180 vs 3 us for 16k elements), and gelu is all erf.
    """
    if str(x.dtype) == "float32":
        return topi.fast_erf(x)
    return compute(x.shape, lambda *i: te.erf(x[*i]), name=f"{name}_erf")


@te_op("erf")
def erf(x: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
    e = erf_stage(x, name)
    return compute(x.shape, lambda *i: e[*i], name=name)


@te_op("gelu")
def gelu(x: te.Tensor, *, approximate: str, out: TensorType, name: str) -> te.Tensor:
    """x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); approximate='tanh' is the tanh formula."""
    if approximate == "tanh":
        return compute(x.shape, lambda *i: _gelu_tanh(x[*i]), name=name)
    half, one = const(0.5, x.dtype), const(1.0, x.dtype)
    scaled = compute(x.shape, lambda *i: x[*i] * const(1 / math.sqrt(2), x.dtype), name=f"{name}_scaled")
    e = erf_stage(scaled, name)
    return compute(x.shape, lambda *i: half * x[*i] * (one + e[*i]), name=name)


@te_op("clip")
def clip(x: te.Tensor, *, min: float | None, max: float | None, out: TensorType, name: str) -> te.Tensor:
    def scalar(v: Scalar) -> Scalar:
        clamped = v
        if min is not None:
            clamped = te.max(clamped, const(min, x.dtype))
        if max is not None:
            clamped = te.min(clamped, const(max, x.dtype))
        if str(x.dtype).startswith("float"):  # NaN stays NaN, as in NumPy and PyTorch (see nan_max)
            return tvm.tirx.if_then_else(tvm.tirx.isnan(v), v, clamped)
        return clamped

    return compute(x.shape, lambda *i: scalar(x[*i]), name=name)


@te_op("cast")
def cast(x: te.Tensor, *, dtype: str, out: TensorType, name: str) -> te.Tensor:
    return compute(x.shape, lambda *i: x[*i].astype(dtype), name=name)


def _div(a: Scalar, b: Scalar) -> Scalar:
    """True division for floats; NumPy's // for integers, including its 0 for a zero divisor.

    The guard matters: an integer division by zero in compiled code is SIGFPE, which kills the
    Python process instead of raising.
    """
    if str(a.dtype).startswith("float"):
        return a / b
    zero = const(0, a.dtype)
    return tvm.tirx.if_then_else(b == zero, zero, tvm.tirx.floordiv(a, b))


#: Exponent bits per materialised stage of an integer pow (see `int_pow`).
POW_BITS_PER_STAGE = 4


def int_pow(a: te.Tensor, b: te.Tensor, out: TensorType, name: str) -> te.Tensor:
    """a ** b for integers as PyTorch computes it: squaring per exponent bit, wrapping on overflow.

    TIR's pow is float-only. Each stage handles 4 bits of the exponent and is kept as a buffer
    (`MATERIALIZE_TAG`): written as one expression the repeated squarings double in size with every
    bit (and Let-binding them trips TVM's simplifier on int64 overflow). A negative exponent gives 0,
    except for the bases 1 (1) and -1 (+-1 by parity).
    """
    dtype = out.dtype
    zero, one = const(0, dtype), const(1, dtype)
    base_at = lambda i: a[*broadcast_index(i, a.shape)]  # noqa: E731
    exp_at = lambda i: b[*broadcast_index(i, b.shape)]  # noqa: E731
    bits = tvm.DataType(dtype).bits - 1  # the sign bit is never set in a non-negative exponent

    def steps(first: int, last: int, result: Scalar, base: Scalar, e: Scalar, want_base: bool) -> Scalar:
        for k in range(first, last):
            bit = (e >> const(k, dtype)) & one
            result, base = tvm.tirx.Select(bit == one, result * base, result), base * base
        return base if want_base else result

    result = base = None
    for first in range(0, bits, POW_BITS_PER_STAGE):
        last = min(first + POW_BITS_PER_STAGE, bits)

        def stage(want_base: bool, first=first, last=last, result=result, base=base):
            def element(*i: Scalar) -> Scalar:
                r = one if result is None else result[*i]
                p = base_at(i) if base is None else base[*i]
                return steps(first, last, r, p, exp_at(i), want_base)

            kind = "base" if want_base else "result"
            return compute(out.shape, element, name=f"{name}_{kind}{first}", tag=MATERIALIZE_TAG)

        result, base = stage(False), (stage(True) if last < bits else None)

    def element(*i: Scalar) -> Scalar:
        x, e = base_at(i), exp_at(i)
        sign = tvm.tirx.Select((e & one) == one, -one, one)
        unit = tvm.tirx.Select(x == one, one, tvm.tirx.Select(x == -one, sign, zero))
        return tvm.tirx.Select(e < zero, unit, result[*i])

    return compute(out.shape, element, name=name)


@te_op("pow")
def pow_(a: te.Tensor, b: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
    if out.dtype.startswith("float"):
        return compute(
            out.shape, lambda *i: te.power(a[*broadcast_index(i, a.shape)], b[*broadcast_index(i, b.shape)]), name=name
        )
    return int_pow(a, b, out, name)


def _is_float(x: Scalar) -> bool:
    return str(x.dtype).startswith("float")


# float a - b is written a + (-b), which IEEE 754 makes identical (negation is exact), because
# TVM's simplifier rewrites x - x to 0 and (x + c) - x to c for floats too: wrong when x is NaN or inf.


_BINARY: dict[str, Callable[[Scalar, Scalar], Scalar]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a + (-b) if _is_float(a) else a - b,  # see the note above
    "mul": lambda a, b: a * b,
    "div": _div,
    "maximum": nan_max,
    "minimum": nan_min,
}


def _binary(op: str) -> Callable[..., te.Tensor]:
    scalar = _BINARY[op]

    def binary(a: te.Tensor, b: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
        def element(*i: Scalar) -> Scalar:
            return scalar(a[*broadcast_index(i, a.shape)], b[*broadcast_index(i, b.shape)])

        return compute(out.shape, element, name=name)

    return binary


for _op in _BINARY:
    te_op(_op)(_binary(_op))


@te_op("bias_add")
def bias_add(x: te.Tensor, b: te.Tensor, *, axis: int, out: TensorType, name: str) -> te.Tensor:
    axis %= len(x.shape)
    return compute(x.shape, lambda *i: x[*i] + b[i[axis]], name=name)
