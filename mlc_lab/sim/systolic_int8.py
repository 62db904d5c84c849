"""Integer arithmetic of an int8 systolic array (TPU v1's): int8 x int8 products summed in int32.

A weight-quantized product `matmul_dequant(x, w_q, s_w)` reaches the array as integers on both sides:
the float activations are quantized at the array boundary with one symmetric scale per tensor,

    s_x = max|x| / 127,   x_q = round(x / s_x)  in [-127, 127]

the array accumulates exactly in int32 (acc = x_q @ w_q; |acc| <= K * 127^2, so K up to 2^17 cannot
overflow), and the accumulator unit rescales: y = acc * s_x * s_w[n]. Compared with the float product
x @ (w_q * s_w), only the activation rounding is new: each x moves by at most s_x / 2, so
|y - y_float| <= s_x / 2 * sum_k |w_q[k, n]| * s_w[n]  (`activation_error_bound`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: The largest magnitude of a symmetric int8 value (-128 is not used, as in the weights).
INT8_MAX = 127
#: Inner dimension beyond which an int32 accumulator of int8 x int8 products could overflow.
MAX_EXACT_K = (2**31 - 1) // (INT8_MAX * INT8_MAX)

#: (A [M x K], B [K x N]) -> A @ B, in the dtype of its operands (int32 here).
IntGemm = Callable[[np.ndarray, np.ndarray], np.ndarray]


def quantize_activations(x: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """Per-tensor symmetric int8 quantization of a float tensor: (x_q, s_x) with x ~ x_q * s_x."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    if not np.isfinite(peak):
        raise ValueError(f"quantize_activations: the activations hold {peak} (inf or NaN); int8 cannot represent it")
    scale = np.float32(peak / INT8_MAX if peak > 0 else 1.0)
    return np.clip(np.rint(x / scale), -INT8_MAX, INT8_MAX).astype(np.int8), scale


def int8_gemm(a_q: np.ndarray, b_q: np.ndarray, gemm: IntGemm | None = None) -> np.ndarray:
    """int8 A (M x K) @ int8 B (K x N) accumulated in int32 (exact for K <= MAX_EXACT_K)."""
    if a_q.dtype != np.int8 or b_q.dtype != np.int8:
        raise TypeError(f"int8_gemm: operands must be int8, got {a_q.dtype} and {b_q.dtype}")
    if a_q.shape[-1] > MAX_EXACT_K:
        raise ValueError(f"int8_gemm: K={a_q.shape[-1]} could overflow an int32 accumulator (max {MAX_EXACT_K})")
    a32, b32 = a_q.astype(np.int32), b_q.astype(np.int32)
    out = a32 @ b32 if gemm is None else gemm(a32, b32)
    return np.asarray(out).astype(np.int32, copy=False)


def dequant_product(
    x: np.ndarray, w_q: np.ndarray, scales: np.ndarray, transpose_b: bool, gemm: IntGemm | None = None
) -> np.ndarray:
    """`matmul_dequant` as the int8 array computes it: quantize x, int32-accumulate, rescale (module docstring)."""
    x_q, s_x = quantize_activations(x)
    b_q = np.ascontiguousarray(w_q.T if transpose_b else w_q)  # K x N
    acc = int8_gemm(x_q.reshape(-1, x.shape[-1]), b_q, gemm)
    y = acc.astype(np.float32) * (s_x * scales.astype(np.float32))
    return y.reshape(*x.shape[:-1], b_q.shape[1]).astype(np.float32)


def activation_error_bound(x: np.ndarray, w_q: np.ndarray, scales: np.ndarray, transpose_b: bool) -> np.ndarray:
    """The most the activation rounding can move each output: s_x / 2 * sum_k |w_q[k, n]| * s_w[n]."""
    _, s_x = quantize_activations(x)
    b_q = np.abs((w_q.T if transpose_b else w_q).astype(np.float64))
    return s_x / 2 * b_q.sum(axis=0) * scales
