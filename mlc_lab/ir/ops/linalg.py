"""Matrix products: the heavy ops whose outputs elementwise ops can fuse into."""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, register, same_dtype
from mlc_lab.ir.types import TensorType, broadcast_shapes, upper


def _matmul_type(types, attrs):
    a, b = types
    dtype = same_dtype("matmul", types)
    if a.rank < 2 or b.rank < 2:
        raise OpError(f"matmul: both inputs need rank >= 2, got {list(a.shape)} and {list(b.shape)}")
    if a.shape[-1] != b.shape[-2]:
        raise OpError(f"matmul: inner dimensions differ: {list(a.shape)} @ {list(b.shape)}")
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise OpError(f"matmul: batch dimensions of {list(a.shape)} and {list(b.shape)} do not broadcast") from None
    return TensorType((*batch, a.shape[-2], b.shape[-1]), dtype)


def _dense_type(types, attrs):
    x, w = types
    dtype = same_dtype("dense", types)
    if w.rank != 2:
        raise OpError(f"dense: weight must be [out_features, in_features], got {list(w.shape)}")
    if x.rank < 1 or x.shape[-1] != w.shape[1]:
        raise OpError(f"dense: input features {list(x.shape)[-1:]} do not match weight {list(w.shape)}")
    return TensorType((*x.shape[:-1], w.shape[0]), dtype)


def _contraction_flops(inputs, output, attrs) -> int:
    """A multiply-add (2 FLOPs) per output element and element of the inner dimension (at most, if symbolic)."""
    return 2 * output.numel * upper(inputs[0].shape[-1])


register(
    "matmul",
    OpKind.OUT_FUSABLE,
    _matmul_type,
    lambda a, b: np.matmul(a, b),
    arity=(2, 2),
    traits=[Trait.GEMM],
    flops=_contraction_flops,
    doc="batched matrix product with NumPy broadcasting of the batch dimensions",
)
register(
    "dense",
    OpKind.OUT_FUSABLE,
    _dense_type,
    lambda x, w: np.matmul(x, w.T),
    arity=(2, 2),
    traits=[Trait.GEMM],
    flops=_contraction_flops,
    doc="x @ w.T with w stored [out_features, in_features], as torch.nn.Linear stores it",
)
