"""What an operator is: a name, a fusion kind, its attributes, a type rule and a reference meaning.

Every other part of the compiler (verifier, interpreter, passes, code generators) asks this registry
about an op instead of hard-coding op names, so adding an op is one `register` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np

from mlc_lab.ir.types import TensorType


class OpKind(IntEnum):
    """How an op composes with its neighbours under fusion (the same scale as TVM's OpPatternKind)."""

    ELEMWISE = 0  # out[i] = f(in[i])
    BROADCAST = 1  # elementwise after broadcasting inputs
    INJECTIVE = 2  # each output element reads one input element (reshape, transpose, slice)
    REDUCTION = 3  # reduces axes (sum, softmax, pools, norms)
    OUT_FUSABLE = 4  # heavy op whose output elementwise ops can join (conv2d, matmul)
    OPAQUE = 8  # never fused (inputs, constants, fused groups themselves)


class OpError(ValueError):
    """A node's inputs or attributes do not fit its op. The message names the op."""


TypeRule = Callable[[Sequence[TensorType], Mapping[str, Any]], TensorType]
Compute = Callable[..., np.ndarray]


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: OpKind
    infer: TypeRule
    compute: Compute | None
    attrs: Mapping[str, Any] = field(default_factory=dict)  # name -> default; REQUIRED marks required
    arity: tuple[int, int | None] = (1, 1)  # (min, max) inputs; max None = variadic
    canonicalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    layout_sensitive: bool = False
    doc: str = ""

    def normalize_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults, reject unknown or missing attributes, convert lists to tuples."""
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise OpError(f"{self.name}: unknown attribute(s) {sorted(unknown)}; it takes {sorted(self.attrs)}")
        out: dict[str, Any] = {}
        for key, default in self.attrs.items():
            value = attrs.get(key, default)
            if value is REQUIRED:
                raise OpError(f"{self.name}: missing required attribute {key!r}")
            out[key] = _freeze(value)
        if self.canonicalize is not None:
            out = self.canonicalize(out)
        return out

    def check_arity(self, n: int) -> None:
        lo, hi = self.arity
        if n < lo or (hi is not None and n > hi):
            want = f"{lo}" if lo == hi else f"{lo}..{hi if hi is not None else 'any'}"
            raise OpError(f"{self.name}: takes {want} inputs, got {n}")


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


OPS: dict[str, OpDef] = {}


def register(
    name: str,
    kind: OpKind,
    infer: TypeRule,
    compute: Compute | None,
    *,
    attrs: Mapping[str, Any] | None = None,
    arity: tuple[int, int | None] = (1, 1),
    canonicalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    layout_sensitive: bool = False,
    doc: str = "",
) -> OpDef:
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered")
    opdef = OpDef(name, kind, infer, compute, dict(attrs or {}), arity, canonicalize, layout_sensitive, doc)
    OPS[name] = opdef
    return opdef


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise OpError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None


def infer_type(op: str, input_types: Sequence[TensorType], attrs: Mapping[str, Any]) -> TensorType:
    opdef = get_op(op)
    opdef.check_arity(len(input_types))
    return opdef.infer(list(input_types), attrs)


# -- helpers shared by the type rules ------------------------------------------------------------
def same_dtype(op: str, types: Sequence[TensorType]) -> str:
    dtypes = {t.dtype for t in types}
    if len(dtypes) > 1:
        raise OpError(f"{op}: inputs have different dtypes {[t.dtype for t in types]}; insert a cast")
    return types[0].dtype


def require_float(op: str, t: TensorType) -> None:
    if not t.dtype.startswith("float"):
        raise OpError(f"{op}: needs a floating-point input, got {t.dtype}")


def require_rank(op: str, t: TensorType, rank: int, what: str = "input") -> None:
    if t.rank != rank:
        raise OpError(f"{op}: {what} must have rank {rank}, got shape {list(t.shape)}")


def norm_axis(op: str, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise OpError(f"{op}: axis {axis} out of range for rank {rank}")
    return axis % rank
