"""MLIR's textual syntax, piece by piece: tensor types, affine maps, dense literals, and the lowering error.

Shared by the function emitter (`emit.py`) and the per-op emitters (`ops.py`); it imports neither, so
those two do not import each other in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.types import DTYPES

#: A tensor-level operand of a generic: (ssa name, its tensor type, one affine expression per dim).
Operand = tuple[str, str, Sequence[str]]


def mlir_scalar(dtype: str) -> str:
    """The MLIR element type of an IR dtype ("float32" -> "f32")."""
    return DTYPES[dtype]


class MLIRLoweringError(MlcLabError, NotImplementedError):
    """The graph holds something this code generator cannot express; the message names it."""


def dynamic_axis_error(op: str, node: str, axis: int, dim: object, why: str) -> MLIRLoweringError:
    """The error for an op whose emitter needs a static size on an axis that is symbolic (`SymDim`)."""
    return MLIRLoweringError(
        f"no MLIR lowering for op {op!r} (node %{node}) with a dynamic axis {axis} (size {dim}): {why} "
        "(bind the length, or use backend='tvm')"
    )


def is_static_dim(d: object) -> bool:
    """A size known when the module is written (an int); a `SymDim`, or an SSA `index` value computed
    from one (a str such as "%n"), is dynamic: MLIR writes it `?`."""
    return isinstance(d, (int, np.integer))


def tensor_type(shape: Sequence[object], dtype: str) -> str:
    """`tensor<1x3x16x16xf32>` (rank 0: `tensor<f32>`); a dynamic dimension is `?` (`tensor<1x?xi64>`)."""
    dims = "".join(f"{d if is_static_dim(d) else '?'}x" for d in shape)
    return f"tensor<{dims}{mlir_scalar(dtype)}>"


def broadcast_exprs(in_shape: Sequence[int], out_exprs: Sequence[str], out_shape: Sequence[int]) -> list[str]:
    """NumPy broadcasting as affine expressions: align right; a size-1 dim that was stretched reads index 0."""
    offset = len(out_shape) - len(in_shape)
    return [out_exprs[offset + j] if d == out_shape[offset + j] else "0" for j, d in enumerate(in_shape)]


def affine_map(rank: int, exprs: Sequence[str]) -> str:
    dims = ", ".join(f"d{i}" for i in range(rank))
    return f"affine_map<({dims}) -> ({', '.join(exprs)})>"


def identity(rank: int) -> list[str]:
    return [f"d{i}" for i in range(rank)]


def dense_literal(array: np.ndarray) -> str:
    """`dense<"0x...">` holds the raw little-endian bytes; booleans are written out (i1 is bit-packed).

    A constant whose elements are all one value is written as that one element (MLIR reads a one-element
    buffer as a splat): a 143M-parameter weight filled by ONNX ConstantOfShape was 1.1 GB of hex to write
    and parse, and is 8 bytes of it now.
    """
    if array.dtype == np.bool_:
        if _is_splat(array):
            return f"dense<{'true' if array.flat[0] else 'false'}>"
        return "dense<" + _nested(array.tolist()) + ">"
    data = np.ascontiguousarray(array)
    if _is_splat(data):
        data = data.reshape(-1)[:1]
    return f'dense<"0x{data.tobytes().hex().upper()}">'


def _is_splat(array: np.ndarray) -> bool:
    """More than one element, all bit-for-bit the same (so -0.0 is not 0.0, and one NaN is every NaN)."""
    if array.size < 2:
        return False
    rows = np.ascontiguousarray(array).reshape(-1).view(np.uint8).reshape(array.size, array.itemsize)
    sample = rows[:: max(1, array.size // 64)]  # a non-splat weight nearly always differs here: no full pass
    return bool((sample == rows[0]).all() and (rows == rows[0]).all())


def _nested(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_nested(v) for v in value) + "]"
    return "true" if value else "false"
