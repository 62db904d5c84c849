"""Matrix products, reductions over axes, and the data-movement ops (reshape, transpose, slice, ...)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import tvm
from tvm import te

from mlc_lab.codegen.tvm.te_ops.layout import from_canonical, to_canonical
from mlc_lab.codegen.tvm.te_ops.registry import (
    broadcast_index,
    compute,
    const,
    extent,
    nan_max_reducer,
    nan_min_reducer,
    te_op,
)
from mlc_lab.ir.layout import primal_axes
from mlc_lab.ir.types import TensorType


# -- matrix products ---------------------------------------------------------------------------------
@te_op("matmul")
def matmul(a: te.Tensor, b: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
    """out[..., i, j] = sum_k a[..., i, k] * b[..., k, j], batch axes broadcast as in NumPy."""
    k = te.reduce_axis((0, extent(a.shape[-1])), "k")

    def element(*index):
        *lead, i, j = index
        a_lead = broadcast_index(lead, a.shape[:-2])
        b_lead = broadcast_index(lead, b.shape[:-2])
        return te.sum(a[*a_lead, i, k] * b[*b_lead, k, j], axis=k)

    return compute(out.shape, element, name=name)


@te_op("dense")
def dense(x: te.Tensor, w: te.Tensor, *, out: TensorType, name: str) -> te.Tensor:
    """out[..., j] = sum_k x[..., k] * w[j, k]: torch.nn.Linear's weight, stored [out, in]."""
    k = te.reduce_axis((0, int(w.shape[1])), "k")
    return compute(out.shape, lambda *i: te.sum(x[*i[:-1], k] * w[i[-1], k], axis=k), name=name)


# -- reductions ----------------------------------------------------------------------------------------
def _reduce_axes_of(axes: Sequence[int] | None, rank: int) -> list[int]:
    return list(range(rank)) if axes is None else sorted(a % rank for a in axes)


def _reduction(x: te.Tensor, axes, keepdims: bool, out: TensorType, name: str, reducer) -> te.Tensor:
    rank = len(x.shape)
    reduced = _reduce_axes_of(axes, rank)
    if not reduced:
        return compute(x.shape, lambda *i: x[*i], name=name)
    raxes = {a: te.reduce_axis((0, extent(x.shape[a])), f"r{a}") for a in reduced}
    kept = [a for a in range(rank) if a not in raxes]

    def element(*index):
        if keepdims:
            source = [raxes[a] if a in raxes else index[a] for a in range(rank)]
        else:
            at = dict(zip(kept, index))
            source = [raxes[a] if a in raxes else at[a] for a in range(rank)]
        return reducer(x[*source], axis=list(raxes.values()))

    return compute(out.shape, element, name=name)


@te_op("sum")
def reduce_sum(x: te.Tensor, *, axes, keepdims: bool, out: TensorType, name: str) -> te.Tensor:
    return _reduction(x, axes, keepdims, out, name, te.sum)


@te_op("max")
def reduce_max(x: te.Tensor, *, axes, keepdims: bool, out: TensorType, name: str) -> te.Tensor:
    return _reduction(x, axes, keepdims, out, name, nan_max_reducer)


@te_op("min")
def reduce_min(x: te.Tensor, *, axes, keepdims: bool, out: TensorType, name: str) -> te.Tensor:
    return _reduction(x, axes, keepdims, out, name, nan_min_reducer)


@te_op("mean")
def reduce_mean(x: te.Tensor, *, axes, keepdims: bool, out: TensorType, name: str) -> te.Tensor:
    """Sum, then divide by the count (truncating for integers, as NumPy's mean-then-astype does)."""
    total = _reduction(x, axes, keepdims, out, f"{name}_sum", te.sum)
    count = math.prod(int(x.shape[a]) for a in _reduce_axes_of(axes, len(x.shape)))
    if out.dtype.startswith("float"):
        return compute(out.shape, lambda *i: total[*i] / const(count, x.dtype), name=name)
    return compute(out.shape, lambda *i: tvm.tirx.truncdiv(total[*i], const(count, x.dtype)), name=name)


# -- data movement ---------------------------------------------------------------------------------------
def _unravel(flat, shape: Sequence[int]) -> list:
    index = []
    for size in reversed(shape):
        index.append(flat % size)
        flat = flat // size
    return index[::-1]


def _ravel(index: Sequence, shape: Sequence[int]):
    flat = 0
    for i, size in zip(index, shape):
        flat = flat * size + i
    return flat


@te_op("reshape")
def reshape(x: te.Tensor, *, shape, out: TensorType, name: str) -> te.Tensor:
    """Same row-major order: output index -> flat position -> input index."""
    in_shape, out_shape = [extent(d) for d in x.shape], [extent(d) for d in out.shape]
    return compute(out_shape, lambda *i: x[*_unravel(_ravel(i, out_shape), in_shape)], name=name)


@te_op("transpose")
def transpose(x: te.Tensor, *, perm, out: TensorType, name: str) -> te.Tensor:
    rank = len(x.shape)
    perm = [p % rank for p in perm] if perm is not None else list(reversed(range(rank)))

    def element(*index):
        source = [None] * rank
        for out_axis, in_axis in enumerate(perm):
            source[in_axis] = index[out_axis]
        return x[*source]

    return compute(out.shape, element, name=name)


@te_op("concat")
def concat(*xs: te.Tensor, axis: int, out: TensorType, name: str) -> te.Tensor:
    """Select the input whose range along `axis` holds the index (a chain of if_then_else)."""
    axis %= len(out.shape)
    starts = [0]
    for x in xs[:-1]:
        starts.append(starts[-1] + int(x.shape[axis]))

    def element(*index):
        def read(k: int):
            i = list(index)
            i[axis] = index[axis] - starts[k]
            return xs[k][*i]

        value = read(len(xs) - 1)
        for k in reversed(range(len(xs) - 1)):
            value = tvm.tirx.if_then_else(index[axis] < starts[k + 1], read(k), value)
        return value

    return compute(out.shape, element, name=name)


@te_op("slice")
def slice_(x: te.Tensor, *, axes, starts, ends, steps, out: TensorType, name: str) -> te.Tensor:
    """Python slicing: `slice(start, end, step).indices(size)` resolves negatives and clamps, as in NumPy."""
    rank = len(x.shape)
    first, stride = [0] * rank, [1] * rank
    for a, s, e, st in zip(axes, starts, ends, steps or (1,) * len(axes)):
        a %= rank
        first[a], _, stride[a] = slice(s, e, st).indices(int(x.shape[a]))
    return compute(out.shape, lambda *i: x[*(f + s * j for f, s, j in zip(first, stride, i))], name=name)


@te_op("broadcast_to")
def broadcast_to(x: te.Tensor, *, shape, out: TensorType, name: str) -> te.Tensor:
    return compute(out.shape, lambda *i: x[*broadcast_index(i, x.shape)], name=name)


@te_op("pad")
def pad(x: te.Tensor, *, pads, value: float, out: TensorType, name: str) -> te.Tensor:
    before = pads[0::2]
    if not before:  # a rank-0 tensor has nothing to pad
        return compute((), lambda: x[()], name=name)

    def element(*index):
        bounds = [c for i, b, d in zip(index, before, x.shape) for c in (i >= b, i < b + int(d))]
        source = [i - b for i, b in zip(index, before)]
        return tvm.tirx.if_then_else(tvm.tirx.all(*bounds), x[*source], const(value, x.dtype))

    return compute(out.shape, element, name=name)


@te_op("layout_transform")
def layout_transform(x: te.Tensor, *, src_layout: str, dst_layout: str, out: TensorType, name: str) -> te.Tensor:
    """Output index (dst) -> canonical coordinates -> input index (src)."""
    canonical = primal_axes(src_layout)

    def element(*index):
        return x[*from_canonical(to_canonical(index, dst_layout, canonical), src_layout, canonical)]

    return compute(out.shape, element, name=name)
