"""Tensor layouts as strings: "NCHW", "NHWC", blocked "NCHW8c"; kernels "OIHW", "HWIO", "OIHW8i8o".

An upper-case letter is a whole axis; a number plus the lower-case letter is an inner block of that
axis (so "NCHW8c" stores C as C/8 outer blocks and an innermost block of 8 channels). Conversions go
through the canonical order ("NCHW" for activations, "OIHW" for conv kernels) with one reshape and one
transpose, which is exactly what a layout_transform op computes.
"""

from __future__ import annotations

import re

import numpy as np

from mlc_lab.errors import MlcLabError

_TOKEN = re.compile(r"(\d*)([A-Za-z])")


class LayoutError(MlcLabError, ValueError):
    pass


def parse_layout(layout: str) -> list[tuple[str, int | None]]:
    """ "NCHW8c" -> [("N", None), ("C", None), ("H", None), ("W", None), ("c", 8)]."""
    tokens = _TOKEN.findall(layout)
    if "".join(f + a for f, a in tokens) != layout or not tokens:
        raise LayoutError(f"cannot parse layout {layout!r}")
    out: list[tuple[str, int | None]] = []
    for factor, axis in tokens:
        if axis.isupper():
            if factor:
                raise LayoutError(f"layout {layout!r}: only sub-axes (lower case) take a block size")
            out.append((axis, None))
        else:
            if not factor or int(factor) <= 0:
                raise LayoutError(f"layout {layout!r}: sub-axis {axis!r} needs a positive block size")
            if axis.upper() not in layout:
                raise LayoutError(f"layout {layout!r}: sub-axis {axis!r} has no primal axis {axis.upper()!r}")
            out.append((axis, int(factor)))
    letters = [a for a, _ in out]
    if len(set(letters)) != len(letters):
        raise LayoutError(f"layout {layout!r} repeats an axis")
    return out


def primal_axes(layout: str) -> str:
    return "".join(a for a, f in parse_layout(layout) if f is None)


def _expanded(canonical: str, layout: str) -> tuple[list[str], dict[str, int]]:
    parsed = parse_layout(layout)
    if sorted(primal_axes(layout)) != sorted(canonical):
        raise LayoutError(f"layout {layout!r} does not have the axes of {canonical!r}")
    blocks = {a.upper(): f for a, f in parsed if f is not None}
    order: list[str] = []
    for axis in canonical:
        order.append(axis)
        if axis in blocks:
            order.append(axis.lower())
    return order, blocks


def layout_shape(canonical_shape: tuple[int, ...], canonical: str, layout: str) -> tuple[int, ...]:
    """The shape a tensor of `canonical_shape` (in `canonical` order) has in `layout`."""
    if len(canonical_shape) != len(canonical):
        raise LayoutError(f"shape {list(canonical_shape)} does not have rank {len(canonical)} of {canonical!r}")
    _, blocks = _expanded(canonical, layout)
    sizes = dict(zip(canonical, canonical_shape))
    dims = {}
    for axis, size in sizes.items():
        if axis in blocks:
            f = blocks[axis]
            if size % f:
                raise LayoutError(f"axis {axis} of size {size} is not divisible by block {f} of layout {layout!r}")
            dims[axis], dims[axis.lower()] = size // f, f
        else:
            dims[axis] = size
    return tuple(dims[a] for a, _ in parse_layout(layout))


def canonical_shape(shape: tuple[int, ...], canonical: str, layout: str) -> tuple[int, ...]:
    """Inverse of `layout_shape`."""
    parsed = parse_layout(layout)
    if len(shape) != len(parsed):
        raise LayoutError(f"shape {list(shape)} does not have rank {len(parsed)} of layout {layout!r}")
    dims = {a: d for (a, _), d in zip(parsed, shape)}
    _expanded(canonical, layout)
    return tuple(dims[a] * dims.get(a.lower(), 1) for a in canonical)


def to_layout(array: np.ndarray, canonical: str, layout: str) -> np.ndarray:
    """Convert an array stored in `canonical` order into `layout`."""
    order, blocks = _expanded(canonical, layout)
    target = layout_shape(array.shape, canonical, layout)
    split = []
    for axis, size in zip(canonical, array.shape):
        split += [size // blocks[axis], blocks[axis]] if axis in blocks else [size]
    perm = [order.index(a) for a, _ in parse_layout(layout)]
    return np.ascontiguousarray(array.reshape(split).transpose(perm)).reshape(target)


def from_layout(array: np.ndarray, canonical: str, layout: str) -> np.ndarray:
    """Convert an array stored in `layout` back into `canonical` order."""
    order, _ = _expanded(canonical, layout)
    letters = [a for a, _ in parse_layout(layout)]
    perm = [letters.index(a) for a in order]
    return np.ascontiguousarray(array.transpose(perm)).reshape(canonical_shape(array.shape, canonical, layout))


def convert(array: np.ndarray, canonical: str, src: str, dst: str) -> np.ndarray:
    return to_layout(from_layout(array, canonical, src), canonical, dst)
