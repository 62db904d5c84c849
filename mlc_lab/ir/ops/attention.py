"""Fused attention: softmax(q @ k^T * scale + mask) @ v as one op (what `passes.FuseAttention` builds).

One node instead of five means a backend with a native kernel (TVM's FlashAttention-style kernel in
`mlc_lab.codegen.tvm.kernels.attention`) never writes the [Sq, Skv] score matrix to memory; the
registry's cost says so: its traffic is q, k, v (and the mask, if any) read once and the output written
once. Backends without a kernel (MLIR, the simulators) run the decomposition back into the unfused ops,
which is also the op's meaning in the interpreter, so fused and unfused graphs agree by construction.

`causal=True` lets query i see keys j <= i + (Skv - Sq) (aligned at the bottom right, as a decoder
with a KV cache needs: one new query sees every key); for Sq == Skv that is the usual lower triangle.
A row whose keys are all masked gives NaN, exactly as the unfused softmax does. k and v may have
size-1 batch dimensions where q has more (grouped-query attention: one k/v head per group of query
heads, read once instead of repeated).
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.registry import OpError, OpKind, register, require_float, same_dtype
from mlc_lab.ir.types import TensorType


def causal_mask(q_len: int, k_len: int, dtype: str = "float32") -> np.ndarray:
    """The additive [q_len, k_len] mask of `causal=True`: 0 where query i may see key j, else -inf."""
    allowed = np.tril(np.ones((q_len, k_len), dtype=bool), k_len - q_len)
    return np.where(allowed, 0, -np.inf).astype(dtype)


def _broadcasts_to(shape, target) -> bool:
    """Same rank, and every dimension equal to the target's or 1 (k/v heads shared by a query group)."""
    return len(shape) == len(target) and all(d in (1, t) for d, t in zip(shape, target))


def _attention_type(types, attrs):
    q, k, v = types[:3]
    op = "fused_attention"
    require_float(op, q)
    same_dtype(op, types)
    for t, what in ((q, "q"), (k, "k"), (v, "v")):
        if t.rank < 2:
            raise OpError(f"{op}: {what} needs rank >= 2 ([..., length, depth]), got shape {list(t.shape)}")
    batch = q.shape[:-2]
    if not (_broadcasts_to(k.shape[:-2], batch) and _broadcasts_to(v.shape[:-2], batch)):
        raise OpError(
            f"{op}: the batch dimensions of k and v must broadcast to q's (grouped-query heads: size 1), "
            f"got {list(q.shape)}, {list(k.shape)}, {list(v.shape)}"
        )
    if k.shape[-1] != q.shape[-1]:
        raise OpError(f"{op}: q depth {q.shape[-1]} differs from k depth {k.shape[-1]}")
    if v.shape[-2] != k.shape[-2]:
        raise OpError(f"{op}: v has {v.shape[-2]} positions, k has {k.shape[-2]}")
    scores = (*batch, q.shape[-2], k.shape[-2])
    if len(types) == 4:
        mask = types[3]
        try:
            fits = np.broadcast_shapes(mask.shape, scores) == scores
        except ValueError:
            fits = False
        if not fits:
            raise OpError(f"{op}: mask {list(mask.shape)} does not broadcast to the scores {list(scores)}")
    if not isinstance(attrs["scale"], float):
        raise OpError(f"{op}: scale must be a float, got {attrs['scale']!r}")
    return TensorType((*batch, q.shape[-2], v.shape[-1]), q.dtype)


def _attention_parts(b, q, k, v, *mask, scale, causal):
    """transpose(k) -> matmul -> mul(scale) -> [add causal mask] -> [add mask] -> softmax -> matmul."""
    rank = len(k.shape)
    k_t = b.transpose(k, perm=(*range(rank - 2), rank - 1, rank - 2))
    scores = b.mul(b.matmul(q, k_t), b.constant(np.asarray(scale, q.dtype), name="scale"))
    if causal:
        scores = b.add(scores, b.constant(causal_mask(q.shape[-2], k.shape[-2], q.dtype), name="causal_mask"))
    if mask:
        scores = b.add(scores, mask[0])
    return b.matmul(b.softmax(scores, axis=-1), v)


def _attention_flops(inputs, output, attrs) -> int:
    """Both products (2 FLOPs per multiply-add) and ~5 per score for scale, mask and the softmax; the
    masked-out half of a causal matrix is counted too (the FlashAttention papers' convention)."""
    q, k, v = inputs[:3]
    rows = output.numel // v.shape[-1]  # batch x Sq
    keys = k.shape[-2]
    return rows * keys * (2 * q.shape[-1] + 2 * v.shape[-1] + 5)


register(
    "fused_attention",
    OpKind.OPAQUE,
    _attention_type,
    None,
    decompose=_attention_parts,
    attrs={"scale": 1.0, "causal": False},
    arity=(3, 4),
    flops=_attention_flops,
    doc="softmax(q @ k^T * scale + mask) @ v in one kernel; inputs (q, k, v[, additive mask])",
)
