"""Scalar bodies of the elementwise ops: what one element of a `linalg.generic` computes.

A body function takes a `Body` (which writes lines inside a generic's region), the IR node and the
SSA names of its scalar operands, and returns the SSA name of the result. Because every elementwise
op is a scalar body, a fused group of them becomes ONE generic whose region chains the bodies.

The bodies are derived from the registry's scalar definitions (`OpDef.scalar`, see
`mlc_lab.ir.ops.scalar`): `MLIROps` writes each primitive as `arith`/`math` lines, once; an op
registered later (a new `mish`) gets its body the same way (`scalar_body`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from mlc_lab.codegen.mlir.syntax import MLIRLoweringError, mlir_scalar
from mlc_lab.ir import Node
from mlc_lab.ir.ops import OPS, get_op
from mlc_lab.ir.ops.scalar import Handler, Operand, constant_value


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


# -- helpers the handler shares ---------------------------------------------------------------
# IREE's llvm-cpu backend links no libm, so float64 math functions must be expanded (`tanh`) or refused
# with an error naming the node (`MLIROps.erf`).


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


#: (float, signed integer, bool) predicates of each comparison.
_PREDICATES = {
    "lt": ("olt", "slt", "ult"),
    "le": ("ole", "sle", "ule"),
    "gt": ("ogt", "sgt", "ugt"),
    "ge": ("oge", "sge", "uge"),
    "eq": ("oeq", "eq", "eq"),
    "ne": ("une", "ne", "ne"),
}


class MLIROps(Handler):
    """The primitives as `arith`/`math` lines of one generic body; values are SSA names, their dtypes kept here."""

    def __init__(self, body: Body, node: Node) -> None:
        self.b, self.node = body, node
        self.types: dict[str, str] = {}

    def _typed(self, name: str, dtype: str) -> str:
        self.types[name] = dtype
        return name

    def constant(self, value: float, dtype: str) -> str:
        return self._typed(self.b.const(constant_value(value, dtype), dtype), dtype)

    def dtype(self, x: str) -> str:
        return self.types[x]

    def _arith(self, fop: str, iop: str | None, *args: str) -> str:
        dt = self.types[args[0]]
        return self._typed(self.b.arith(fop, iop, dt, *args), dt)

    def cast(self, x: str, dtype: str) -> str:
        src = self.types[x]
        s, d = mlir_scalar(src), mlir_scalar(dtype)
        if src == dtype:
            return x
        if dtype == "bool":  # x != 0
            return self.ne(x, 0)
        wider = np.dtype(dtype).itemsize > np.dtype(src).itemsize
        if is_float(src) and is_float(dtype):
            op = "arith.extf" if wider else "arith.truncf"
        elif is_float(src):
            op = "arith.fptosi"
        elif is_float(dtype):
            op = "arith.uitofp" if src == "bool" else "arith.sitofp"
        else:
            op = ("arith.extui" if src == "bool" else "arith.extsi") if wider else "arith.trunci"
        return self._typed(self.b.op(f"{op} {x}", f"{s} to {d}", "cast"), dtype)

    def where(self, cond: str, a: Operand, b: Operand) -> str:
        a, b = self.lift(a, b)
        dt = self.types[a]
        return self._typed(self.b.op(f"arith.select {cond}, {a}, {b}", mlir_scalar(dt), "sel"), dt)

    def neg(self, x: str) -> str:
        dt = self.types[x]
        if is_float(dt):
            return self._arith("arith.negf", None, x)
        return self._typed(self.b.arith("", "arith.subi", dt, self.constant(0, dt), x), dt)

    def abs(self, x: str) -> str:
        return self._arith("math.absf", "math.absi", x)

    def exp(self, x: str) -> str:
        return self._arith("math.exp", None, x)

    def log(self, x: str) -> str:
        return self._arith("math.log", None, x)

    def sqrt(self, x: str) -> str:
        return self._arith("math.sqrt", None, x)

    def rsqrt(self, x: str) -> str:
        return self._arith("math.rsqrt", None, x)

    def erf(self, x: str) -> str:
        if self.types[x] == "float64":
            n = self.node
            raise MLIRLoweringError(
                f"node %{n.name} ({n.op}): erf on float64 is not supported by the MLIR backend (IREE's CPU "
                "backend has no float64 erf); cast to float32, or use the tvm/interpreter backend"
            )
        return self._arith("math.erf", None, x)

    def tanh(self, x: str) -> str:
        return self._typed(tanh(self.b, x, self.types[x]), self.types[x])

    def _binary(self, fop: str, iop: str | None, a: Operand, b: Operand) -> str:
        return self._arith(fop, iop, *self.lift(a, b))

    def add(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.addf", "arith.addi", a, b)

    def sub(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.subf", "arith.subi", a, b)

    def mul(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.mulf", "arith.muli", a, b)

    def div(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.divf", "arith.floordivsi", a, b)

    def maximum(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.maximumf", "arith.maxsi", a, b)

    def minimum(self, a: Operand, b: Operand) -> str:
        return self._binary("arith.minimumf", "arith.minsi", a, b)

    def pow(self, a: Operand, b: Operand) -> str:
        a, b = self.lift(a, b)
        dt = self.types[a]
        if is_float(dt):
            return self._arith("math.powf", None, a, b)
        return self._typed(int_pow(self.b, a, b, dt), dt)

    def _compare(self, kind: str, a: Operand, b: Operand) -> str:
        a, b = self.lift(a, b)
        dt = self.types[a]
        fpred, ipred, bpred = _PREDICATES[kind]
        if is_float(dt):
            text = f"arith.cmpf {fpred}, {a}, {b}"
        else:
            text = f"arith.cmpi {bpred if dt == 'bool' else ipred}, {a}, {b}"
        return self._typed(self.b.op(text, mlir_scalar(dt), kind), "bool")

    def lt(self, a: Operand, b: Operand) -> str:
        return self._compare("lt", a, b)

    def le(self, a: Operand, b: Operand) -> str:
        return self._compare("le", a, b)

    def gt(self, a: Operand, b: Operand) -> str:
        return self._compare("gt", a, b)

    def ge(self, a: Operand, b: Operand) -> str:
        return self._compare("ge", a, b)

    def eq(self, a: Operand, b: Operand) -> str:
        return self._compare("eq", a, b)

    def ne(self, a: Operand, b: Operand) -> str:
        return self._compare("ne", a, b)


def derived_body(op: str) -> ScalarFn | None:
    """The scalar body of an op with a scalar definition in the registry (None without one)."""
    scalar = get_op(op).scalar
    if scalar is None:
        return None

    def body(b: Body, n: Node, a: list[str], dt: str) -> str:
        ops = MLIROps(b, n)
        for name, x in zip(a, n.inputs):
            ops.types[name] = x.dtype
        return scalar(ops, *a, **n.attrs)

    return body


def _identity(b: Body, n: Node, a: list[str], dt: str) -> str:
    return a[0]


#: Bodies written by hand: only ops with no arithmetic of their own.
HAND_WRITTEN: dict[str, ScalarFn] = {"broadcast_to": _identity}


def scalar_body(op: str) -> ScalarFn | None:
    """The scalar body of `op`: hand-written, else derived from its scalar definition (ops registered
    after import included), else None."""
    return HAND_WRITTEN.get(op) or SCALAR_BODIES.get(op) or derived_body(op)


#: Op -> scalar body, for every op registered at import (later ones: `scalar_body`).
SCALAR_BODIES: dict[str, ScalarFn] = {
    **{op: body for op in OPS if (body := derived_body(op)) is not None},
    **HAND_WRITTEN,
}
