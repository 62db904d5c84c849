"""Elementwise and broadcasting ops: the ops fusion merges freely."""

from __future__ import annotations

from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, register, require_float, same_dtype
from mlc_lab.ir.ops.scalar import SQRT1_2, SQRT_2_OVER_PI, int_pow  # noqa: F401  (int_pow: its old home)
from mlc_lab.ir.types import TensorType, broadcast_shapes, canonical_dtype

#: Ops with no meaning on booleans (NumPy and PyTorch refuse them too): cast first.
_NOT_FOR_BOOL = ("neg", "abs", "sub", "div", "pow")


def _refuse_bool(op: str, dtype: str) -> None:
    if dtype == "bool" and op in _NOT_FOR_BOOL:
        raise OpError(f"{op}: not defined for bool tensors (PyTorch refuses it too); cast to an integer first")


def unary_type(op: str, float_only: bool = True):
    """The type rule of a unary elementwise op: the input's type (floating-point only, unless told)."""

    def infer(types, attrs):
        if float_only:
            require_float(op, types[0])
        _refuse_bool(op, types[0].dtype)
        return types[0]

    return infer


# -- scalar definitions: each op's meaning, written once over the primitives of `ops` -----------------
# (`mlc_lab.ir.ops.scalar`); the interpreter, TVM and MLIR all derive their kernels from these.
def _relu(ops, x):
    return ops.maximum(x, 0)


def _sigmoid(ops, x):
    return ops.div(1, ops.add(1, ops.exp(ops.neg(x))))


def _silu(ops, x):
    return ops.mul(x, _sigmoid(ops, x))


def _gelu(ops, x, approximate="none"):
    """x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); 'tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    if approximate == "tanh":
        t = ops.tanh(ops.mul(SQRT_2_OVER_PI, ops.add(x, ops.mul(0.044715, ops.mul(x, ops.mul(x, x))))))
    else:
        t = ops.erf(ops.mul(x, SQRT1_2))
    return ops.mul(ops.mul(x, 0.5), ops.add(1, t))


def _clip(ops, x, min, max):
    """max(x, min), then min(x, max); NaN stays NaN. Booleans clip as numbers, then != 0 (NumPy's meaning)."""
    if ops.dtype(x) == "bool":
        return ops.ne(_clip(ops, ops.cast(x, "float64"), min, max), 0)
    if min is not None:
        x = ops.maximum(x, min)
    if max is not None:
        x = ops.minimum(x, max)
    return x


def _primitive(name: str):
    """The op that is one primitive of the same name (exp, add, ...)."""
    return lambda ops, *args, **attrs: getattr(ops, name)(*args, **attrs)


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
    "relu": (_relu, "max(x, 0)"),
    "sigmoid": (_sigmoid, "1 / (1 + exp(-x))"),
    "tanh": (_primitive("tanh"), "tanh(x)"),
    "exp": (_primitive("exp"), "e**x"),
    "log": (_primitive("log"), "natural log"),
    "sqrt": (_primitive("sqrt"), "square root"),
    "rsqrt": (_primitive("rsqrt"), "1 / sqrt(x)"),
    "erf": (_primitive("erf"), "error function"),
    "silu": (_silu, "x * sigmoid(x)"),
}
for _name, (_fn, _doc) in _UNARY.items():
    register(_name, OpKind.ELEMWISE, unary_type(_name), None, scalar=_fn, doc=_doc)

register("neg", OpKind.ELEMWISE, unary_type("neg", False), None, scalar=_primitive("neg"), doc="-x")
register("abs", OpKind.ELEMWISE, unary_type("abs", False), None, scalar=_primitive("abs"), doc="|x|")
register(
    "gelu",
    OpKind.ELEMWISE,
    unary_type("gelu"),
    None,
    scalar=_gelu,
    attrs={"approximate": "none"},
    canonicalize=_check_gelu,
    doc="x * Phi(x); approximate='tanh' uses the tanh formula",
)
register(
    "clip",
    OpKind.ELEMWISE,
    unary_type("clip", False),
    None,
    scalar=_clip,
    attrs={"min": None, "max": None},
    canonicalize=_check_clip,
    doc="clamp to [min, max] (relu6 is clip(0, 6))",
)
register(
    "cast",
    OpKind.ELEMWISE,
    lambda types, attrs: TensorType(types[0].shape, attrs["dtype"]),
    None,
    scalar=_primitive("cast"),
    attrs={"dtype": "float32"},
    canonicalize=lambda a: {"dtype": canonical_dtype(a["dtype"])},
    doc="convert the element type",
)


def _broadcast_type(op: str):
    def infer(types, attrs):
        dtype = same_dtype(op, types)
        _refuse_bool(op, dtype)
        try:
            shape = broadcast_shapes(*(t.shape for t in types))
        except ValueError:
            raise OpError(f"{op}: shapes {[list(t.shape) for t in types]} do not broadcast") from None
        return TensorType(shape, dtype)

    return infer


_BINARY = {
    "add": "a + b",
    "sub": "a - b",
    "mul": "a * b",
    "div": "a / b (floor division for integers)",
    "maximum": "elementwise max",
    "minimum": "elementwise min",
    "pow": "a ** b (integers: exact, wrapping on overflow; a negative exponent gives 0 unless |a| = 1)",
}
for _name, _doc in _BINARY.items():
    register(_name, OpKind.BROADCAST, _broadcast_type(_name), None, scalar=_primitive(_name), arity=(2, 2), doc=_doc)


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


def _bias_add(ops, x, b, axis):
    """x + b, b read along `axis` (the CHANNELWISE trait says so to every backend)."""
    return ops.add(x, b)


register(
    "bias_add",
    OpKind.BROADCAST,
    _bias_add_type,
    None,
    scalar=_bias_add,
    attrs={"axis": 1},
    arity=(2, 2),
    traits=[Trait.CHANNELWISE],
    doc="add a 1-D bias along one axis (axis=1: conv channels in NCHW; -1: dense features)",
)
