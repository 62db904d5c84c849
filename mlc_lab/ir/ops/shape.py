"""Ops that only move data: reshape, transpose, slicing, concatenation, layout changes."""

from __future__ import annotations

import math

import numpy as np

from mlc_lab.ir import layout as L
from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, norm_axis, register, same_dtype
from mlc_lab.ir.types import SymDim, TensorType, is_static


def resolve_shape(op: str, shape: tuple[int, ...], numel: int, source: tuple[int, ...]) -> tuple[int, ...]:
    """Resolve one -1 in a target shape, or raise naming both shapes."""
    if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
        raise OpError(f"{op}: bad target shape {list(shape)}")
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if -1 in shape:
        if known == 0 or numel % known:
            raise OpError(f"{op}: cannot reshape {list(source)} into {list(shape)}")
        shape = tuple(numel // known if d == -1 else d for d in shape)
    if int(np.prod(shape, dtype=np.int64)) != numel:
        raise OpError(f"{op}: cannot reshape {list(source)} ({numel} elements) into {list(shape)}")
    return shape


def resolve_symbolic_shape(op: str, shape: tuple, source: tuple) -> tuple:
    """A target shape with symbolic dimensions: it must keep the source's SymDims (each as often), and its
    static sizes must multiply to the source's (one -1 takes the static rest)."""
    symbols = lambda dims: sorted((d.name, d.upper) for d in dims if isinstance(d, SymDim))  # noqa: E731
    if symbols(shape) != symbols(source):
        raise OpError(
            f"{op}: cannot reshape {[str(d) for d in source]} into {[str(d) for d in shape]}: "
            "the symbolic dimensions must stay as they are (the same ones, each unsplit)"
        )
    static_source = math.prod(d for d in source if not isinstance(d, SymDim))
    static_target = tuple(d for d in shape if not isinstance(d, SymDim))
    resolved = iter(resolve_shape(op, static_target, static_source, source))
    return tuple(d if isinstance(d, SymDim) else next(resolved) for d in shape)


def _reshape_type(types, attrs):
    (x,) = types
    if not (x.is_static and is_static(attrs["shape"])):
        return TensorType(resolve_symbolic_shape("reshape", attrs["shape"], x.shape), x.dtype)
    return TensorType(resolve_shape("reshape", attrs["shape"], x.numel, x.shape), x.dtype)


register(
    "reshape",
    OpKind.INJECTIVE,
    _reshape_type,
    lambda x, shape: x.reshape(shape),
    attrs={"shape": None},
    canonicalize=lambda a: {"shape": tuple(a["shape"])} if a["shape"] is not None else _missing("reshape", "shape"),
    doc="same elements in row-major order, new shape (one -1 is inferred)",
    traits=[Trait.DATA_MOVEMENT],
)


def _missing(op, attr):
    raise OpError(f"{op}: missing required attribute {attr!r}")


def _transpose_type(types, attrs):
    (x,) = types
    perm = attrs["perm"] if attrs["perm"] is not None else tuple(reversed(range(x.rank)))
    if sorted(p % x.rank if x.rank else p for p in perm) != list(range(x.rank)) or len(perm) != x.rank:
        raise OpError(f"transpose: perm {list(perm)} is not a permutation of {x.rank} axes")
    return TensorType(tuple(x.shape[p] for p in perm), x.dtype)


register(
    "transpose",
    OpKind.INJECTIVE,
    _transpose_type,
    lambda x, perm: np.ascontiguousarray(np.transpose(x, perm)),
    attrs={"perm": None},
    doc="permute axes (None: reverse them)",
    traits=[Trait.DATA_MOVEMENT],
)


def _concat_type(types, attrs):
    dtype = same_dtype("concat", types)
    first = types[0]
    axis = norm_axis("concat", attrs["axis"], first.rank)
    for t in types[1:]:
        if t.rank != first.rank or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise OpError(f"concat: shapes {[list(t.shape) for t in types]} differ outside axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return TensorType(tuple(shape), dtype)


register(
    "concat",
    OpKind.INJECTIVE,
    _concat_type,
    lambda *xs, axis: np.concatenate(xs, axis=axis),
    attrs={"axis": 0},
    arity=(1, None),
    doc="join tensors along an axis",
    traits=[Trait.DATA_MOVEMENT],
)


def _slice_indices(op, x: TensorType, attrs) -> tuple[slice, ...]:
    axes, starts, ends, steps = attrs["axes"], attrs["starts"], attrs["ends"], attrs["steps"]
    if steps is None:
        steps = (1,) * len(axes)
    if not len(axes) == len(starts) == len(ends) == len(steps):
        raise OpError(f"{op}: axes, starts, ends and steps must have the same length")
    index = [slice(None)] * x.rank
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st <= 0:
            raise OpError(f"{op}: step must be positive, got {st}")
        index[norm_axis(op, a, x.rank)] = slice(s, e, st)
    return tuple(index)


def _slice_type(types, attrs):
    (x,) = types
    index = _slice_indices("slice", x, attrs)
    for s, d in zip(index, x.shape):
        if isinstance(d, SymDim) and s != slice(None):
            raise OpError(f"slice: axis of symbolic size {d} cannot be sliced (slice static axes only)")
    return TensorType(
        tuple(d if isinstance(d, SymDim) else len(range(*s.indices(d))) for s, d in zip(index, x.shape)), x.dtype
    )


register(
    "slice",
    OpKind.INJECTIVE,
    _slice_type,
    lambda x, **a: np.ascontiguousarray(x[_slice_indices("slice", TensorType.of(x), a)]),
    attrs={"axes": (), "starts": (), "ends": (), "steps": None},
    doc="x[starts:ends:steps] along `axes` (Python slicing rules, ends are clamped)",
    traits=[Trait.DATA_MOVEMENT],
)


def _broadcast_to_type(types, attrs):
    (x,) = types
    try:
        if np.broadcast_shapes(x.shape, attrs["shape"]) != tuple(attrs["shape"]):
            raise ValueError
    except ValueError:
        raise OpError(f"broadcast_to: cannot broadcast {list(x.shape)} to {list(attrs['shape'])}") from None
    return TensorType(attrs["shape"], x.dtype)


register(
    "broadcast_to",
    OpKind.BROADCAST,
    _broadcast_to_type,
    lambda x, shape: np.ascontiguousarray(np.broadcast_to(x, shape)),
    attrs={"shape": ()},
    doc="repeat size-1 axes up to `shape`",
    traits=[Trait.DATA_MOVEMENT],
)


def _pad_type(types, attrs):
    (x,) = types
    pads = attrs["pads"]
    if len(pads) != 2 * x.rank or min(pads, default=0) < 0:
        raise OpError(f"pad: pads must be {2 * x.rank} non-negative ints (before, after per axis), got {list(pads)}")
    return TensorType(tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x.shape)), x.dtype)


register(
    "pad",
    OpKind.INJECTIVE,
    _pad_type,
    lambda x, pads, value: np.pad(x, [(pads[2 * i], pads[2 * i + 1]) for i in range(x.ndim)], constant_values=value),
    attrs={"pads": (), "value": 0.0},
    doc="constant padding; pads = (before0, after0, before1, after1, ...)",
    traits=[Trait.DATA_MOVEMENT],
)


def _layout_transform_type(types, attrs):
    (x,) = types
    src, dst = attrs["src_layout"], attrs["dst_layout"]
    try:
        canonical = L.primal_axes(src)
        return TensorType(L.layout_shape(L.canonical_shape(x.shape, canonical, src), canonical, dst), x.dtype)
    except L.LayoutError as e:
        raise OpError(f"layout_transform {src} -> {dst}: {e}") from None


def _layout_transform(x, src_layout, dst_layout):
    return L.convert(x, L.primal_axes(src_layout), src_layout, dst_layout)


register(
    "layout_transform",
    OpKind.INJECTIVE,
    _layout_transform_type,
    _layout_transform,
    attrs={"src_layout": "NCHW", "dst_layout": "NCHW"},
    doc="re-store a tensor in another layout (e.g. NCHW -> NHWC or NCHW8c)",
    traits=[Trait.DATA_MOVEMENT],
)
