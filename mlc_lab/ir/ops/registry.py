"""What an operator is: a name, a fusion kind, traits, its attributes, a type rule, a cost and a meaning.

Every other part of the compiler (verifier, interpreter, passes, metrics, tuner, simulators, code
generators) asks this registry about an op instead of keeping op-name tuples of its own:

- `is_source(op)`: a graph input or constant (given, not computed);
- `has_trait(op, Trait.GEMM)` / `ops_with(Trait.DATA_MOVEMENT)`: what kind of work an op does;
- `channel_axis(op, attrs, rank)`: where a layout-sensitive or channelwise op keeps its channels;
- `node_cost(node)`: FLOPs and compulsory bytes read/written, one formula per op.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.ops.decomposition import Decomposition, decomposed_compute
from mlc_lab.ir.ops.scalar import ScalarFn, numpy_compute
from mlc_lab.ir.types import TensorType

if TYPE_CHECKING:
    from mlc_lab.ir.graph import Node


class OpKind(IntEnum):
    """How an op composes with its neighbours under fusion (the same scale as TVM's OpPatternKind)."""

    ELEMWISE = 0  # out[i] = f(in[i])
    BROADCAST = 1  # elementwise after broadcasting inputs
    INJECTIVE = 2  # each output element reads one input element (reshape, transpose, slice)
    REDUCTION = 3  # reduces axes (sum, softmax, pools, norms)
    OUT_FUSABLE = 4  # heavy op whose output elementwise ops can join (conv2d, matmul)
    OPAQUE = 8  # never fused (inputs, constants, fused groups themselves)

    def __repr__(self) -> str:  # readable where it is printed (an IntEnum's str() is a bare number)
        return f"OpKind.{self.name}"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


class Trait(StrEnum):
    """What kind of work an op does, for the modules that treat a class of ops alike."""

    SOURCE = "source"  # graph inputs and constants: values given, nothing computed, no kernel
    GEMM = "gemm"  # a contraction (matmul, dense, conv2d): matrix engines run it, the tuner tunes it
    DATA_MOVEMENT = "data_movement"  # only moves or relabels elements: no arithmetic, no vector-unit time
    LAYOUT_SENSITIVE = "layout_sensitive"  # spatial op with a `data_layout` attr that says where C is
    CHANNELWISE = "channelwise"  # per-channel parameters along the channel axis `attrs["axis"]`

    def __repr__(self) -> str:
        return f"Trait.{self.name}"


@dataclass(frozen=True)
class Cost:
    """Work of one kernel: FLOPs (a multiply-add is 2) and its compulsory memory traffic in bytes."""

    flops: int
    bytes_read: int
    bytes_written: int

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.flops + other.flops, self.bytes_read + other.bytes_read, self.bytes_written + other.bytes_written
        )


class OpError(MlcLabError, ValueError):
    """A node's inputs or attributes do not fit its op. The message names the op."""


TypeRule = Callable[[Sequence[TensorType], Mapping[str, Any]], TensorType]
Compute = Callable[..., np.ndarray]
#: FLOPs of one node from its input types, output type and (normalized) attributes.
FlopRule = Callable[[Sequence[TensorType], TensorType, Mapping[str, Any]], int]


def elementwise_flops(inputs: Sequence[TensorType], output: TensorType, attrs: Mapping[str, Any]) -> int:
    """The default: one operation per element of the largest tensor the op reads or writes."""
    return max(output.numel, max((t.numel for t in inputs), default=0))


def no_flops(inputs: Sequence[TensorType], output: TensorType, attrs: Mapping[str, Any]) -> int:
    return 0


@dataclass(frozen=True)
class OpDef:
    name: str
    kind: OpKind
    infer: TypeRule
    compute: Compute | None
    attrs: Mapping[str, Any] = field(default_factory=dict)  # name -> default; REQUIRED marks required
    arity: tuple[int, int | None] = (1, 1)  # (min, max) inputs; max None = variadic
    canonicalize: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    doc: str = ""
    traits: frozenset[Trait] = frozenset()
    flops: FlopRule = elementwise_flops
    #: the meaning of an elementwise op over scalar primitives (`mlc_lab.ir.ops.scalar`); every backend
    #: derives its kernel from it, and `compute` defaults to it on NumPy
    scalar: ScalarFn | None = None
    #: `decompose(builder, *inputs, **attrs) -> output` in simpler registered ops, for backends with no
    #: native kernel (`mlc_lab.passes.Decompose`); `compute` defaults to running it eagerly on NumPy
    decompose: Decomposition | None = None

    def has(self, trait: Trait) -> bool:
        return trait in self.traits

    @property
    def layout_sensitive(self) -> bool:
        return Trait.LAYOUT_SENSITIVE in self.traits

    def cost(self, inputs: Sequence[TensorType], output: TensorType, attrs: Mapping[str, Any]) -> Cost:
        """FLOPs from the op's rule; traffic: every input read once, the output written once (none for sources)."""
        if Trait.SOURCE in self.traits:
            return Cost(0, 0, 0)
        return Cost(int(self.flops(inputs, output, attrs)), sum(t.nbytes for t in inputs), output.nbytes)

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
    doc: str = "",
    traits: Sequence[Trait] = (),
    flops: FlopRule | None = None,
    scalar: ScalarFn | None = None,
    decompose: Decomposition | None = None,
) -> OpDef:
    """Add an op. `flops` defaults to one per element (none for sources and data movement).

    An op given by `scalar` (elementwise) or `decompose` (composite) needs no `compute`: the
    reference meaning is derived from it (`mlc_lab.ir.ops.scalar`, `mlc_lab.ir.ops.decomposition`).
    """
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered")
    traits = frozenset(traits)
    if compute is None and scalar is not None:
        compute = numpy_compute(scalar, Trait.CHANNELWISE in traits, _out_dtype(infer))
    elif compute is None and decompose is not None:
        compute = decomposed_compute(name, decompose, OPS)
    if flops is None:
        flops = no_flops if traits & {Trait.SOURCE, Trait.DATA_MOVEMENT} else elementwise_flops
    opdef = OpDef(
        name=name,
        kind=kind,
        infer=infer,
        compute=compute,
        attrs=dict(attrs or {}),
        arity=arity,
        canonicalize=canonicalize,
        doc=doc,
        traits=traits,
        flops=flops,
        scalar=scalar,
        decompose=decompose,
    )
    OPS[name] = opdef
    return opdef


def _out_dtype(infer: TypeRule) -> Callable[[Sequence[np.ndarray], Mapping[str, Any]], str]:
    """The dtype the type rule gives for these arrays (for computes that work in a wider type)."""
    return lambda arrays, attrs: infer([TensorType(a.shape, a.dtype.name) for a in arrays], attrs).dtype


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise OpError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None


def has_trait(op: str, trait: Trait) -> bool:
    """Whether registered op `op` has `trait` (an unknown op raises OpError naming it)."""
    return trait in get_op(op).traits


def ops_with(trait: Trait) -> frozenset[str]:
    """Names of every registered op with `trait`."""
    return frozenset(name for name, opdef in OPS.items() if trait in opdef.traits)


def is_source(op: str) -> bool:
    """A graph input or constant: its value is given, so no kernel computes it."""
    return has_trait(op, Trait.SOURCE)


def channel_axis(op: str, attrs: Mapping[str, Any], rank: int) -> int | None:
    """The channel axis of a node of `op`: from `data_layout` (layout-sensitive ops; the outer C of a
    blocked NCHW8c), from `axis` (channelwise ops), None for any other op."""
    opdef = get_op(op)
    if Trait.LAYOUT_SENSITIVE in opdef.traits:
        layout = attrs["data_layout"]
        return layout.index("C") if "C" in layout else None
    if Trait.CHANNELWISE in opdef.traits:
        return norm_axis(op, attrs["axis"], rank)
    return None


def node_cost(node: Node) -> Cost:
    """The cost of one graph node (a fused group: its ops' FLOPs, traffic at the group's boundary)."""
    return get_op(node.op).cost([x.type for x in node.inputs], node.type, node.attrs)


def is_contraction_kernel(node: Node) -> bool:
    """A GEMM op, or a fused group (no nested groups) around exactly one: the kernels the tuner tunes
    and the TVM schedule register-tiles."""
    if node.op == "fused":
        inner = node.subgraph.nodes
        return not any(n.op == "fused" for n in inner) and sum(has_trait(n.op, Trait.GEMM) for n in inner) == 1
    return has_trait(node.op, Trait.GEMM)


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
