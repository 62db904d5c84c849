"""Elementwise and broadcasting ops: the ops fusion merges freely."""

from __future__ import annotations

import numpy as np
from scipy import special

from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, register, require_float, same_dtype
from mlc_lab.ir.types import TensorType, canonical_dtype

#: Ops with no meaning on booleans (NumPy and PyTorch refuse them too): cast first.
_NOT_FOR_BOOL = ("neg", "abs", "sub", "div", "pow")


def _refuse_bool(op: str, dtype: str) -> None:
    if dtype == "bool" and op in _NOT_FOR_BOOL:
        raise OpError(f"{op}: not defined for bool tensors (PyTorch refuses it too); cast to an integer first")


def _unary_type(op: str, float_only: bool = True):
    def infer(types, attrs):
        if float_only:
            require_float(op, types[0])
        _refuse_bool(op, types[0].dtype)
        return types[0]

    return infer


def _gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    return 0.5 * x * (1 + special.erf(x / np.sqrt(2)))


def _check_gelu(attrs):
    if attrs["approximate"] not in ("none", "tanh"):
        raise OpError(f"gelu: approximate must be 'none' or 'tanh', got {attrs['approximate']!r}")
    return attrs


def _check_clip(attrs):
    lo, hi = attrs["min"], attrs["max"]
    if lo is not None and hi is not None and lo > hi:
        raise OpError(f"clip: min {lo} is greater than max {hi}")
    return attrs


_UNARY = {
    "relu": (lambda x: np.maximum(x, 0).astype(x.dtype), "max(x, 0)"),
    "sigmoid": (lambda x: special.expit(x), "1 / (1 + exp(-x))"),
    "tanh": (np.tanh, "tanh(x)"),
    "exp": (np.exp, "e**x"),
    "log": (np.log, "natural log"),
    "sqrt": (np.sqrt, "square root"),
    "rsqrt": (lambda x: 1 / np.sqrt(x), "1 / sqrt(x)"),
    "erf": (special.erf, "error function"),
    "silu": (lambda x: x * special.expit(x), "x * sigmoid(x)"),
}
for _name, (_fn, _doc) in _UNARY.items():
    register(_name, OpKind.ELEMWISE, _unary_type(_name), lambda x, _fn=_fn: _fn(x).astype(x.dtype), doc=_doc)

register("neg", OpKind.ELEMWISE, _unary_type("neg", False), lambda x: -x, doc="-x")
register("abs", OpKind.ELEMWISE, _unary_type("abs", False), np.abs, doc="|x|")
register(
    "gelu",
    OpKind.ELEMWISE,
    _unary_type("gelu"),
    lambda x, approximate: _gelu(x, approximate).astype(x.dtype),
    attrs={"approximate": "none"},
    canonicalize=_check_gelu,
    doc="x * Phi(x); approximate='tanh' uses the tanh formula",
)
register(
    "clip",
    OpKind.ELEMWISE,
    _unary_type("clip", False),
    lambda x, min, max: np.clip(x, min, max).astype(x.dtype),
    attrs={"min": None, "max": None},
    canonicalize=_check_clip,
    doc="clamp to [min, max] (relu6 is clip(0, 6))",
)
register(
    "cast",
    OpKind.ELEMWISE,
    lambda types, attrs: TensorType(types[0].shape, attrs["dtype"]),
    lambda x, dtype: x.astype(dtype),
    attrs={"dtype": "float32"},
    canonicalize=lambda a: {"dtype": canonical_dtype(a["dtype"])},
    doc="convert the element type",
)


def _broadcast_type(op: str):
    def infer(types, attrs):
        dtype = same_dtype(op, types)
        _refuse_bool(op, dtype)
        try:
            shape = np.broadcast_shapes(*(t.shape for t in types))
        except ValueError:
            raise OpError(f"{op}: shapes {[list(t.shape) for t in types]} do not broadcast") from None
        return TensorType(shape, dtype)

    return infer


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


def _pow(a, b):
    return int_pow(a, b) if np.issubdtype(a.dtype, np.integer) else np.power(a, b)


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer):
        return np.floor_divide(a, b)
    return np.divide(a, b)


_BINARY = {
    "add": (np.add, "a + b"),
    "sub": (np.subtract, "a - b"),
    "mul": (np.multiply, "a * b"),
    "div": (_div, "a / b (floor division for integers)"),
    "maximum": (np.maximum, "elementwise max"),
    "minimum": (np.minimum, "elementwise min"),
    "pow": (_pow, "a ** b (integers: exact, wrapping on overflow; a negative exponent gives 0 unless |a| = 1)"),
}
for _name, (_fn, _doc) in _BINARY.items():
    register(
        _name,
        OpKind.BROADCAST,
        _broadcast_type(_name),
        lambda a, b, _fn=_fn: np.asarray(_fn(a, b)).astype(a.dtype),
        arity=(2, 2),
        doc=_doc,
    )


def _bias_add_type(types, attrs):
    x, b = types
    same_dtype("bias_add", types)
    if x.rank == 0:
        raise OpError("bias_add: input must have rank >= 1")
    axis = attrs["axis"] % x.rank if -x.rank <= attrs["axis"] < x.rank else None
    if axis is None:
        raise OpError(f"bias_add: axis {attrs['axis']} out of range for rank {x.rank}")
    if b.shape != (x.shape[axis],):
        raise OpError(
            f"bias_add: bias shape {list(b.shape)} must be [{x.shape[axis]}] (axis {axis} of {list(x.shape)})"
        )
    return x


def _bias_add(x, b, axis):
    axis %= x.ndim
    return x + b.reshape((-1,) + (1,) * (x.ndim - axis - 1))


register(
    "bias_add",
    OpKind.BROADCAST,
    _bias_add_type,
    _bias_add,
    attrs={"axis": 1},
    arity=(2, 2),
    traits=[Trait.CHANNELWISE],
    doc="add a 1-D bias along one axis (axis=1: conv channels in NCHW; -1: dense features)",
)
