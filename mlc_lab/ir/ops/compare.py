"""Comparisons, `where` and boolean logic: the ops attention masks are built from.

Each is one scalar definition (`mlc_lab.ir.ops.scalar`), so the interpreter, TVM and MLIR derive their
kernels from it. Comparisons take operands of one dtype (the frontend applies its framework's type
promotion first) and give bool; `where` picks between two operands of one dtype by a bool condition;
the logical ops take and give bool.
"""

from __future__ import annotations

from mlc_lab.ir.ops.registry import OpError, OpKind, register, same_dtype
from mlc_lab.ir.types import TensorType, broadcast_shapes


def _broadcast_shape(op: str, types) -> tuple[int, ...]:
    try:
        return broadcast_shapes(*(t.shape for t in types))
    except ValueError:
        raise OpError(f"{op}: shapes {[list(t.shape) for t in types]} do not broadcast") from None


def _require_bool(op: str, types, what: str = "inputs") -> None:
    if any(t.dtype != "bool" for t in types):
        raise OpError(f"{op}: {what} must be bool, got {[t.dtype for t in types]}; compare or cast first")


def _compare_type(op: str):
    def infer(types, attrs):
        same_dtype(op, types)
        return TensorType(_broadcast_shape(op, types), "bool")

    return infer


def _primitive(name: str):
    return lambda ops, a, b: getattr(ops, name)(a, b)


_COMPARISONS = {
    "less": ("lt", "a < b"),
    "less_equal": ("le", "a <= b"),
    "greater": ("gt", "a > b"),
    "greater_equal": ("ge", "a >= b"),
    "equal": ("eq", "a == b"),
    "not_equal": ("ne", "a != b"),
}
for _name, (_prim, _doc) in _COMPARISONS.items():
    register(
        _name,
        OpKind.BROADCAST,
        _compare_type(_name),
        None,
        scalar=_primitive(_prim),
        arity=(2, 2),
        doc=f"{_doc}, elementwise with broadcasting; bool result",
    )


def _where_type(types, attrs):
    cond, a, b = types
    _require_bool("where", [cond], "the condition")
    return TensorType(_broadcast_shape("where", types), same_dtype("where", [a, b]))


register(
    "where",
    OpKind.BROADCAST,
    _where_type,
    None,
    scalar=lambda ops, cond, a, b: ops.where(cond, a, b),
    arity=(3, 3),
    doc="a where cond else b, elementwise with broadcasting (masked_fill is where(mask, value, x))",
)


def _logical_type(op: str):
    def infer(types, attrs):
        _require_bool(op, types)
        return TensorType(_broadcast_shape(op, types), "bool")

    return infer


# On bool values the arithmetic primitives are the logical ones (NumPy's meaning: mul is and, add is or).
register(
    "logical_and",
    OpKind.BROADCAST,
    _logical_type("logical_and"),
    None,
    scalar=lambda ops, a, b: ops.mul(a, b),
    arity=(2, 2),
    doc="a and b (bool)",
)
register(
    "logical_or",
    OpKind.BROADCAST,
    _logical_type("logical_or"),
    None,
    scalar=lambda ops, a, b: ops.add(a, b),
    arity=(2, 2),
    doc="a or b (bool)",
)
register(
    "logical_not",
    OpKind.ELEMWISE,
    _logical_type("logical_not"),
    None,
    scalar=lambda ops, x: ops.eq(x, False),
    doc="not x (bool)",
)
