"""Scalar bodies of the elementwise ops: what one element of a `linalg.generic` computes.

Each function takes a `Body` (which writes lines inside a generic's region), the IR node and the
SSA names of its scalar operands, and returns the SSA name of the result. Because every elementwise
op is a scalar body, a fused group of them becomes ONE generic whose region chains the bodies.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mlc_lab.ir import Node
from mlc_lab.ir.types import DTYPES


def mlir_scalar(dtype: str) -> str:
    """The MLIR element type of an IR dtype ("float32" -> "f32")."""
    return DTYPES[dtype]


def is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def float_literal(value: float, dtype: str = "float32") -> str:
    """An MLIR float literal; inf/nan are written as bit patterns (MLIR has no inf keyword)."""
    value = float(value)
    if math.isfinite(value):
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exp = text.split("e")
            text = f"{mantissa}.0e{exp}"
        return text if ("." in text or "e" in text) else text + ".0"
    bits = np.array(value, dtype=dtype).view(f"u{np.dtype(dtype).itemsize}")
    return f"0x{int(bits):0{2 * np.dtype(dtype).itemsize}X}"


class Body:
    """Lines of a generic's region; `const` hoists nothing and keeps each constant next to its use."""

    def __init__(self, fresh: Callable[[str], str]) -> None:
        self.lines: list[str] = []
        self.fresh = fresh

    def op(self, text: str, ty: str, hint: str = "t") -> str:
        """Write `%name = text : ty` and return %name."""
        name = self.fresh(hint)
        self.lines.append(f"{name} = {text} : {ty}")
        return name

    def const(self, value: float, dtype: str) -> str:
        ty = mlir_scalar(dtype)
        literal = float_literal(value, dtype) if is_float(dtype) else str(int(value))
        return self.op(f"arith.constant {literal}", ty, "c")

    def arith(self, fop: str, iop: str | None, dtype: str, *args: str) -> str:
        """A binary/unary arith/math op, picking the float, integer or boolean spelling."""
        if not is_float(dtype) and iop is None:
            raise NotImplementedError(f"{fop} has no integer form")
        name = fop if is_float(dtype) else iop
        if dtype == "bool":  # i1 is signed (true = -1): NumPy's add is or, mul and, max any
            name = BOOL_OPS.get(name, name)
        return self.op(f"{name} {', '.join(args)}", mlir_scalar(dtype), name.split(".")[1][:4])


ScalarFn = Callable[[Body, Node, list[str], str], str]

#: Integer ops and what they are on i1 values with NumPy's boolean meaning.
BOOL_OPS = {
    "arith.addi": "arith.ori",
    "arith.muli": "arith.andi",
    "arith.maxsi": "arith.ori",
    "arith.minsi": "arith.andi",
}


# -- unary ------------------------------------------------------------------------------------------
def _relu(b: Body, n: Node, a: list[str], dt: str) -> str:
    return b.arith("arith.maximumf", "arith.maxsi", dt, a[0], b.const(0, dt))


def _sigmoid(b: Body, n: Node, a: list[str], dt: str) -> str:
    neg = b.arith("arith.negf", None, dt, a[0])
    denom = b.arith("arith.addf", None, dt, b.const(1.0, dt), b.arith("math.exp", None, dt, neg))
    return b.arith("arith.divf", None, dt, b.const(1.0, dt), denom)


def _math(name: str) -> ScalarFn:
    return lambda b, n, a, dt: b.arith(f"math.{name}", None, dt, a[0])


#: float64 math functions IREE cannot compile (its llvm-cpu backend links no libm): `tanh` is expanded
#: (see `tanh`); these are refused with an error naming the node (`mlc_lab.codegen.mlir.ops`).
NO_FLOAT64 = ("erf",)


def tanh(b: Body, x: str, dt: str) -> str:
    """math.tanh; for float64 from exp (IREE links no libm `tanh`), with a Taylor series near 0.

    1 - 2 / (exp(2x) + 1) loses relative accuracy as x -> 0 (cancellation); below |x| = 1e-3 the
    series x - x^3/3 + 2x^5/15 - 17x^7/315 is exact to ~1e-26 relative.
    """
    if dt != "float64":
        return b.arith("math.tanh", None, dt, x)
    f = lambda op, *args: b.arith(f"arith.{op}", None, dt, *args)  # noqa: E731
    e2x = b.arith("math.exp", None, dt, f("mulf", x, b.const(2.0, dt)))
    large = f("subf", b.const(1.0, dt), f("divf", b.const(2.0, dt), f("addf", e2x, b.const(1.0, dt))))
    x2 = f("mulf", x, x)
    series = b.const(-17 / 315, dt)
    for c in (2 / 15, -1 / 3, 1.0):
        series = f("addf", f("mulf", series, x2), b.const(c, dt))
    small = f("mulf", series, x)
    near_zero = b.op(f"arith.cmpf olt, {b.arith('math.absf', None, dt, x)}, {b.const(1e-3, dt)}", "f64", "small")
    return b.op(f"arith.select {near_zero}, {small}, {large}", "f64", "tanh")


def _silu(b: Body, n: Node, a: list[str], dt: str) -> str:
    return b.arith("arith.mulf", None, dt, a[0], _sigmoid(b, n, a, dt))


def _neg(b: Body, n: Node, a: list[str], dt: str) -> str:
    if is_float(dt):
        return b.arith("arith.negf", None, dt, a[0])
    return b.arith("", "arith.subi", dt, b.const(0, dt), a[0])


def _abs(b: Body, n: Node, a: list[str], dt: str) -> str:
    return b.arith("math.absf", "math.absi", dt, a[0])


def _gelu(b: Body, n: Node, a: list[str], dt: str) -> str:
    x = a[0]
    if n.attrs["approximate"] == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        x3 = b.arith("arith.mulf", None, dt, x, b.arith("arith.mulf", None, dt, x, x))
        inner = b.arith("arith.addf", None, dt, x, b.arith("arith.mulf", None, dt, b.const(0.044715, dt), x3))
        t = tanh(b, b.arith("arith.mulf", None, dt, b.const(math.sqrt(2 / math.pi), dt), inner), dt)
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = b.arith("math.erf", None, dt, b.arith("arith.mulf", None, dt, x, b.const(1 / math.sqrt(2), dt)))
    half_x = b.arith("arith.mulf", None, dt, x, b.const(0.5, dt))
    return b.arith("arith.mulf", None, dt, half_x, b.arith("arith.addf", None, dt, b.const(1.0, dt), t))


def _clip(b: Body, n: Node, a: list[str], dt: str) -> str:
    x = a[0]

    def bound(value: float) -> float:  # on booleans a bound acts as its truth value (NumPy: clip, then != 0)
        return float(value > 0) if dt == "bool" else value

    if n.attrs["min"] is not None:
        x = b.arith("arith.maximumf", "arith.maxsi", dt, x, b.const(bound(n.attrs["min"]), dt))
    if n.attrs["max"] is not None:
        x = b.arith("arith.minimumf", "arith.minsi", dt, x, b.const(bound(n.attrs["max"]), dt))
    return x


def _cast(b: Body, n: Node, a: list[str], dt: str) -> str:
    src, dst = n.inputs[0].dtype, n.dtype
    s, d = mlir_scalar(src), mlir_scalar(dst)
    if src == dst:
        return a[0]
    if dst == "bool":  # x != 0
        zero = b.const(0, src)
        cmp = "arith.cmpf une" if is_float(src) else "arith.cmpi ne"
        return b.op(f"{cmp}, {a[0]}, {zero}", s, "ne")
    wider = np.dtype(dst).itemsize > np.dtype(src).itemsize
    if is_float(src) and is_float(dst):
        op = "arith.extf" if wider else "arith.truncf"
    elif is_float(src):
        op = "arith.fptosi"
    elif is_float(dst):
        op = "arith.uitofp" if src == "bool" else "arith.sitofp"
    else:
        op = ("arith.extui" if src == "bool" else "arith.extsi") if wider else "arith.trunci"
    return b.op(f"{op} {a[0]}", f"{s} to {d}", "cast")


# -- binary -----------------------------------------------------------------------------------------
def _binary(fop: str, iop: str | None) -> ScalarFn:
    return lambda b, n, a, dt: b.arith(fop, iop, dt, a[0], a[1])


def _pow(b: Body, n: Node, a: list[str], dt: str) -> str:
    return b.arith("math.powf", None, dt, a[0], a[1]) if is_float(dt) else int_pow(b, a[0], a[1], dt)


def int_pow(b: Body, x: str, e: str, dt: str) -> str:
    """PyTorch's integer pow, straight-line: squaring once per exponent bit, wrapping on overflow.

    (`math.ipowi` would say the same, but IREE cannot legalise its vector form.) A negative exponent
    gives 0, except for the bases 1 (1) and -1 (+-1 by parity), as in PyTorch.
    """
    ty = mlir_scalar(dt)
    one, zero, minus_one = b.const(1, dt), b.const(0, dt), b.const(-1, dt)

    def is_one(v: str) -> str:
        return b.op(f"arith.cmpi eq, {v}, {one}", ty, "set")

    result, base = one, x
    for k in range(8 * np.dtype(dt).itemsize - 1):  # the sign bit is never set in a non-negative exponent
        bit = b.op(f"arith.andi {b.op(f'arith.shrsi {e}, {b.const(k, dt)}', ty, 'shr')}, {one}", ty, "bit")
        result = b.op(f"arith.select {is_one(bit)}, {b.op(f'arith.muli {result}, {base}', ty, 'mul')}, {result}", ty)
        base = b.op(f"arith.muli {base}, {base}", ty, "sq")
    sign = b.op(f"arith.select {is_one(b.op(f'arith.andi {e}, {one}', ty, 'odd'))}, {minus_one}, {one}", ty)
    unit = b.op(f"arith.select {b.op(f'arith.cmpi eq, {x}, {minus_one}', ty, 'm1')}, {sign}, {zero}", ty)
    unit = b.op(f"arith.select {is_one(x)}, {one}, {unit}", ty)
    return b.op(f"arith.select {b.op(f'arith.cmpi slt, {e}, {zero}', ty, 'neg')}, {unit}, {result}", ty)


def _bias_add(b: Body, n: Node, a: list[str], dt: str) -> str:
    return b.arith("arith.addf", "arith.addi", dt, a[0], a[1])


def _batch_norm(b: Body, n: Node, a: list[str], dt: str) -> str:
    """(x - mean) * gamma * rsqrt(var + eps) + beta."""
    x, gamma, beta, mean, var = a
    inv = b.arith("math.rsqrt", None, dt, b.arith("arith.addf", None, dt, var, b.const(n.attrs["eps"], dt)))
    scale = b.arith("arith.mulf", None, dt, gamma, inv)
    centered = b.arith("arith.subf", None, dt, x, mean)
    return b.arith("arith.addf", None, dt, b.arith("arith.mulf", None, dt, centered, scale), beta)


def _identity(b: Body, n: Node, a: list[str], dt: str) -> str:
    return a[0]


SCALAR_BODIES: dict[str, ScalarFn] = {
    "relu": _relu,
    "sigmoid": _sigmoid,
    "tanh": lambda b, n, a, dt: tanh(b, a[0], dt),
    "exp": _math("exp"),
    "log": _math("log"),
    "sqrt": _math("sqrt"),
    "rsqrt": _math("rsqrt"),
    "erf": _math("erf"),
    "silu": _silu,
    "neg": _neg,
    "abs": _abs,
    "gelu": _gelu,
    "clip": _clip,
    "cast": _cast,
    "add": _binary("arith.addf", "arith.addi"),
    "sub": _binary("arith.subf", "arith.subi"),
    "mul": _binary("arith.mulf", "arith.muli"),
    "div": _binary("arith.divf", "arith.floordivsi"),
    "maximum": _binary("arith.maximumf", "arith.maxsi"),
    "minimum": _binary("arith.minimumf", "arith.minsi"),
    "pow": _pow,
    "bias_add": _bias_add,
    "batch_norm": _batch_norm,
    "broadcast_to": _identity,
}
