"""TE for `take`: each output element reads the table at a position held in the index tensor."""

from __future__ import annotations

import tvm
from tvm import te

from mlc_lab.codegen.tvm.te_ops.registry import compute, extent, te_op
from mlc_lab.ir.types import TensorType


@te_op("take")
def take(x: te.Tensor, indices: te.Tensor, *, axis: int, out: TensorType, name: str) -> te.Tensor:
    """out[a, i, b] = x[a, indices[i], b]; a negative position counts from the end, and one out of range
    is clamped (a kernel cannot raise; the interpreter names it instead)."""
    axis %= len(x.shape)
    n, k = extent(x.shape[axis]), len(indices.shape)

    def element(*index):
        position = indices[index[axis : axis + k]].astype("int64")
        position = tvm.tirx.if_then_else(position < 0, position + n, position)
        position = tvm.te.max(tvm.te.min(position, n - 1), 0).astype("int32")
        return x[(*index[:axis], position, *index[axis + k :])]

    return compute(out.shape, element, name=name)
