"""The table from IR op names to TE compute functions, and the helpers they share.

A TE function receives the TE tensors of the node's inputs, the node's (already normalised)
attributes, `out` (the node's IR type, so no function re-derives an output shape the type rule
already computed) and `name` (a prefix for its stage names, unique within the kernel). It returns
one te.Tensor whose shape and dtype must equal `out`; `lower.py` checks that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import tvm
from tvm import te
from tvm.sym import Analyzer

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.types import SymDim, TensorType

TEFunction = Callable[..., te.Tensor]

#: IR op name -> TE compute function.
TE_OPS: dict[str, TEFunction] = {}

#: Stage tag for padding copies: `lower.py` never inlines them into a reduction (see its docstring).
PAD_TAG = "pad"
#: Stage tag for intermediates that must stay buffers: inlined, integer pow's chained squarings would
#: grow into one expression too deep for TVM's passes (they crash past a few dozen nested Lets).
MATERIALIZE_TAG = "materialize"


class UnsupportedOpError(MlcLabError, NotImplementedError):
    """The TVM code generator has no TE function for an op (or for one of its attribute values)."""


def te_op(*names: str) -> Callable[[TEFunction], TEFunction]:
    """Register a TE function for one or more IR ops."""

    def register(fn: TEFunction) -> TEFunction:
        for name in names:
            TE_OPS[name] = fn
        return fn

    return register


#: The Winograd tile size the kernel being lowered uses for an eligible conv (0: direct; set by `lower.py`
#: from the schedule's choice of algorithm, `mlc_lab.codegen.winograd`).
WINOGRAD_TILE: ContextVar[int] = ContextVar("winograd_tile", default=0)

#: SymDim name -> the TIR variable standing for it in the kernel being lowered (set by `lower.py` per kernel).
SYMBOLS: ContextVar[dict[str, tvm.tirx.Var] | None] = ContextVar("symbols", default=None)


def extent(d: Any) -> Any:
    """A dimension as TE wants it: a Python int when static, the kernel's TIR variable for a `SymDim`.

    One variable per name per kernel, so every buffer of a kernel that has length n uses the same n
    (TVM binds it from the argument's shape when the kernel is called).
    """
    if isinstance(d, SymDim):
        table = SYMBOLS.get()
        if table is None:
            raise UnsupportedOpError(f"symbolic dimension {d} outside a kernel being lowered (no SYMBOLS table)")
        if d.name not in table:
            table[d.name] = te.var(d.name, "int64")
        return table[d.name]
    if isinstance(d, tvm.tirx.IntImm):
        return int(d)
    return d if isinstance(d, tvm.tirx.Expr) else int(d)


def const(value: Any, dtype: Any) -> tvm.tirx.Expr:
    """A literal of `dtype`; float bounds given for an integer tensor are truncated as NumPy's cast does."""
    dtype = str(dtype)  # TE tensors and expressions carry a PrimType, not a string
    if not dtype.startswith("float") and dtype != "bool":
        value = int(value)
    return tvm.tirx.const(value, dtype)


#: The bounds of the output indices of the te.compute being built (see `compute`).
_INDEX_BOUNDS: ContextVar[Analyzer | None] = ContextVar("index_bounds", default=None)


def compute(
    shape: Sequence[Any], fcompute: Callable[..., Any], name: str, tag: str = "", attrs: dict | None = None
) -> te.Tensor:
    """`te.compute`, where index arithmetic can be simplified knowing the ranges of the output indices.

    Layout arithmetic builds indices like `(C * 8 + c) // 8` for a blocked axis; knowing 0 <= c < 8,
    `simplify_index` turns that back into `C`. That keeps the printed TensorIR readable and the access
    patterns recognisable for the schedule (a lane index used only in the last axis).
    Only indices are simplified, never the arithmetic on values (TVM 0.27's simplifier also fails
    on some TE expressions, e.g. a Select reading a placeholder).
    """
    extents = [extent(d) for d in shape]

    def with_bounds(*index: Any) -> Any:
        analyzer = Analyzer()
        for var, extent in zip(index, extents):
            analyzer.bind(var, tvm.ir.Range(0, extent))
        token = _INDEX_BOUNDS.set(analyzer)
        try:
            return fcompute(*index)
        finally:
            _INDEX_BOUNDS.reset(token)

    return te.compute(extents, with_bounds, name=name, tag=tag, attrs=attrs)


def simplify_index(index: Sequence[Any]) -> list[Any]:
    """Simplify index expressions with the bounds of the enclosing `compute` (unchanged outside one)."""
    analyzer = _INDEX_BOUNDS.get()
    if analyzer is None:
        return list(index)
    return [analyzer.simplify(i) if isinstance(i, tvm.tirx.Expr) else i for i in index]


def broadcast_index(index: Sequence[Any], shape: Sequence[int]) -> list[Any]:
    """Where output element `index` reads an input of `shape` under NumPy broadcasting.

    Axes are aligned from the right; an input axis of size 1 is read at 0.
    """
    offset = len(index) - len(shape)
    return [0 if size == 1 else index[offset + k] for k, size in enumerate(shape)]


def out_shape(out: TensorType) -> tuple[int, ...]:
    return tuple(out.shape)


# -- NaN semantics --------------------------------------------------------------------------------
# te.max/te.min lower to LLVM's maxnum/minnum, which return the *other* operand when one is NaN;
# NumPy and PyTorch propagate NaN (relu(nan) = nan, max_pool over a NaN = nan). These keep ours equal.
def dtype_of(x: tvm.tirx.Expr) -> str:
    """An expression's dtype: a tensor element has `.dtype`, other TIR expressions (calls, immediates) `.ty`."""
    return str(x.dtype if hasattr(x, "dtype") else getattr(x, "ty", ""))


def _is_float(*exprs: tvm.tirx.Expr) -> bool:
    return any(dtype_of(e).startswith("float") for e in exprs)


def nan_max(a: tvm.tirx.Expr, b: tvm.tirx.Expr) -> tvm.tirx.Expr:
    return _propagating(te.max)(a, b) if _is_float(a, b) else te.max(a, b)


def nan_min(a: tvm.tirx.Expr, b: tvm.tirx.Expr) -> tvm.tirx.Expr:
    return _propagating(te.min)(a, b) if _is_float(a, b) else te.min(a, b)


def _propagating(pick):
    return lambda a, b: tvm.tirx.if_then_else(tvm.tirx.isnan(a) | tvm.tirx.isnan(b), a + b, pick(a, b))


_FLOAT_MAX = te.comm_reducer(_propagating(te.max), lambda dtype: tvm.tirx.min_value(dtype), name="nan_max")
_FLOAT_MIN = te.comm_reducer(_propagating(te.min), lambda dtype: tvm.tirx.max_value(dtype), name="nan_min")


def nan_max_reducer(expr: tvm.tirx.Expr, axis) -> tvm.tirx.Expr:
    """te.max as a reduction, but NaN-propagating for floats (max pooling, `max` over axes)."""
    return (_FLOAT_MAX if _is_float(expr) else te.max)(expr, axis=axis)


def nan_min_reducer(expr: tvm.tirx.Expr, axis) -> tvm.tirx.Expr:
    return (_FLOAT_MIN if _is_float(expr) else te.min)(expr, axis=axis)
