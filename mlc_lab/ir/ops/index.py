"""Indexing by values: `take` reads rows of a table at integer positions held in a tensor.

It is what embedding lookups (`aten.embedding`), `index_select`, `x[idx]` and ONNX's Gather become.
Positions are data, known only at run time: a position in [-n, n) is valid (negative counts from the
end, as in NumPy); the interpreter refuses one outside that range with an error naming it, and the
compiled backends clamp it into range (they have no way to raise from inside a kernel).
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.registry import OpError, OpKind, norm_axis, register
from mlc_lab.ir.types import TensorType

#: The dtypes a position may have.
INDEX_DTYPES = ("int32", "int64")


def _take_type(types, attrs):
    x, indices = types
    if indices.dtype not in INDEX_DTYPES:
        raise OpError(f"take: indices must be {' or '.join(INDEX_DTYPES)}, got {indices.dtype}")
    if x.rank == 0:
        raise OpError("take: the table must have rank >= 1")
    axis = norm_axis("take", attrs["axis"], x.rank)
    return TensorType(x.shape[:axis] + indices.shape + x.shape[axis + 1 :], x.dtype)


def _take(x: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    axis %= x.ndim
    n = x.shape[axis]
    bad = (indices < -n) | (indices >= n)
    if bad.any():
        raise OpError(f"take: position {int(indices[bad].flat[0])} is out of range for axis {axis} of size {n}")
    return np.take(x, indices, axis=axis)


register(
    "take",
    OpKind.INJECTIVE,
    _take_type,
    _take,
    attrs={"axis": 0},
    arity=(2, 2),
    doc="x[..., indices, ...] along `axis`: out.shape = x.shape[:axis] + indices.shape + x.shape[axis+1:]",
)
