"""Weight-quantized products: x @ dequantize(w_q), with int8 weights and one float scale per output channel.

`passes.QuantizeWeights` builds `matmul_dequant(x, w_q, scales)` from a dense/matmul whose weight is a
constant. The weights stay int8 in memory (a quarter of float32's bytes, which is what a
memory-bound decode step pays for); a backend with a kernel for the op dequantizes in its inner loop
(TVM: `mlc_lab.codegen.tvm.te_ops.quant`), the others run the decomposition
`cast -> mul(scales) -> dense/matmul`, which is also the op's meaning here.

    transpose_b=True:  w_q [N, K] (torch.nn.Linear's layout, as `dense`), scales [N]
    transpose_b=False: w_q [K, N] (as `matmul`'s right operand), scales [N]
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.registry import OpError, OpKind, register
from mlc_lab.ir.types import TensorType

#: The integer types a quantized weight may have.
WEIGHT_DTYPES = frozenset({"int8"})


def _matmul_dequant_type(types, attrs):
    x, w, scales = types
    op = "matmul_dequant"
    if x.dtype != "float32" or scales.dtype != "float32":
        raise OpError(f"{op}: x and scales must be float32, got {x.dtype} and {scales.dtype}")
    if w.dtype not in WEIGHT_DTYPES:
        raise OpError(f"{op}: the weight must be one of {sorted(WEIGHT_DTYPES)}, got {w.dtype}")
    if w.rank != 2:
        raise OpError(f"{op}: the weight must be a matrix, got shape {list(w.shape)}")
    n, k = w.shape if attrs["transpose_b"] else w.shape[::-1]
    if x.rank < 1 or x.shape[-1] != k:
        raise OpError(f"{op}: input features {list(x.shape)[-1:]} do not match weight {list(w.shape)}")
    if scales.shape != (n,):
        raise OpError(f"{op}: scales must have shape [{n}] (one per output channel), got {list(scales.shape)}")
    return TensorType((*x.shape[:-1], n), "float32")


def _matmul_dequant_parts(b, x, w, scales, transpose_b):
    """cast(w) * scales (per output channel) -> dense (w [N, K]) or matmul (w [K, N])."""
    wide = b.cast(w, dtype="float32")
    if transpose_b:
        return b.dense(x, b.mul(wide, b.reshape(scales, shape=(scales.shape[0], 1))))
    return b.matmul(x, b.mul(wide, scales))


def _matmul_dequant_flops(inputs, output, attrs) -> int:
    """A multiply-add per output element and input feature (dequantizing is folded into it)."""
    return 2 * output.numel * inputs[0].shape[-1]


def quantize_per_channel(w: np.ndarray, axis: int, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric quantization of `w` with one scale per index of `axis`: (int8 values, float32 scales).

    scale = max|w| / (2^(bits-1) - 1) along the other axis, so the largest weight of a channel maps
    to +-127 and rounding moves each weight by at most scale / 2. An all-zero channel gets scale 1.
    """
    if w.ndim != 2:
        raise ValueError(f"quantize_per_channel: a matrix is needed, got shape {list(w.shape)}")
    levels = 2 ** (bits - 1) - 1
    other = 1 - axis % 2
    peak = np.abs(w).max(axis=other).astype(np.float32)
    scales = np.where(peak > 0, peak / np.float32(levels), np.float32(1)).astype(np.float32)
    shaped = scales[:, None] if axis % 2 == 0 else scales[None, :]
    q = np.clip(np.rint(w / shaped), -levels, levels).astype(np.int8)
    return q, scales


register(
    "matmul_dequant",
    OpKind.OUT_FUSABLE,
    _matmul_dequant_type,
    None,
    decompose=_matmul_dequant_parts,
    attrs={"transpose_b": True},
    arity=(3, 3),
    flops=_matmul_dequant_flops,
    doc="x @ (w_q * scales) with int8 w_q ([N, K] if transpose_b else [K, N]) and float32 scales [N]",
)
