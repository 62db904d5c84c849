"""Layouts as index arithmetic: the TE counterpart of `mlc_lab.ir.layout`.

Every spatial op is written once, in canonical coordinates (n, c, y, x) for data and (o, i, kh, kw)
for kernels. These two functions translate between a tensor's stored index and those coordinates,
so "NHWC", "NCHW8c" or "OIHW8i8o" cost no extra code and no layout_transform: the kernel simply
reads and writes the stored layout (a blocked axis C with block 8 is C = C_outer * 8 + c_inner).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlc_lab.codegen.tvm.te_ops.registry import simplify_index
from mlc_lab.ir.layout import parse_layout


def _blocks(layout: str) -> dict[str, int]:
    return {axis.upper(): factor for axis, factor in parse_layout(layout) if factor is not None}


def to_canonical(index: Sequence[Any], layout: str, canonical: str) -> list[Any]:
    """Stored index in `layout` -> coordinates in `canonical` order ("NCHW8c" -> "NCHW")."""
    at = {axis: i for (axis, _), i in zip(parse_layout(layout), index)}
    blocks = _blocks(layout)
    return simplify_index([at[a] * blocks[a] + at[a.lower()] if a in blocks else at[a] for a in canonical])


def from_canonical(coords: Sequence[Any], layout: str, canonical: str) -> list[Any]:
    """Coordinates in `canonical` order -> stored index in `layout` (the inverse of `to_canonical`)."""
    coord = dict(zip(canonical, coords))
    blocks = _blocks(layout)
    index = []
    for axis, factor in parse_layout(layout):
        if factor is not None:
            index.append(coord[axis.upper()] % factor)
        elif axis in blocks:
            index.append(coord[axis] // blocks[axis])
        else:
            index.append(coord[axis])
    return simplify_index(index)
