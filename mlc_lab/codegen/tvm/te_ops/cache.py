"""TE for `cache_write` as a value (a new cache): the in-place form is `mlc_lab.codegen.tvm.inplace`."""

from __future__ import annotations

import tvm
from tvm import te

from mlc_lab.codegen.tvm.te_ops.registry import compute, extent, te_op
from mlc_lab.ir.types import TensorType


@te_op("cache_write")
def cache_write(cache: te.Tensor, rows: te.Tensor, position: te.Tensor, *, layer: int, out: TensorType, name: str):
    """out = cache, but rows at [position, position + t) of layer `layer` (position clamped into range)."""
    length, t = extent(cache.shape[-2]), extent(rows.shape[-2])
    start = tvm.te.max(tvm.te.min(position[0].astype("int64"), length - t), 0)

    def element(at_layer, *index):
        *mid, s, d = index
        inside = tvm.tirx.all(at_layer == layer, s >= start, s < start + t)
        return tvm.tirx.if_then_else(inside, rows[(*mid, tvm.te.max(s - start, 0), d)], cache[(at_layer, *index)])

    return compute(out.shape, element, name=name)
