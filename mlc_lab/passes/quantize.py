"""QuantizeWeights: constant float32 weights of dense/matmul become int8 with one scale per output channel.

    dense(x, W[N, K])  -> matmul_dequant(x, q[N, K], s[N], transpose_b=True)
    matmul(x, W[K, N]) -> matmul_dequant(x, q[K, N], s[N], transpose_b=False)

with s[n] = max|W[n, :]| / 127 and q = round(W / s) (symmetric, per output channel:
`mlc_lab.ir.ops.quant.quantize_per_channel`). Each weight moves by at most s[n] / 2, so an output
changes by at most sum_k |x[k]| * s[n] / 2 (`error_bound`). Only constant weights are touched (an
activation @ activation product, such as attention's, stays float32), and weights with fewer than
`min_elements` elements are left alone. Activations stay float32: this is weight-only quantization,
which pays where weights dominate the bytes moved (decoding one token at a time).

bits=8 is implemented; grouped int4 is not (it raises).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import Graph, Node
from mlc_lab.ir.ops.quant import quantize_per_channel
from mlc_lab.passes.base import Pass
from mlc_lab.passes.rewrite import Match, RewritePattern, Rewriter, apply_patterns, const, op, wildcard

#: The precisions this pass can produce.
SUPPORTED_BITS = (8,)


def error_bound(x: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The largest change quantization can make to x @ W: sum_k |x[..., k]| * s[n] / 2, per output."""
    return np.abs(x).sum(axis=-1, keepdims=True) * (scales / 2)


class _QuantizeWeight(RewritePattern):
    def __init__(self, op_name: str, min_elements: int, bits: int) -> None:
        self.op_name = op_name
        self.min_elements = min_elements
        self.bits = bits
        self.pattern = op(op_name)(wildcard("x"), const("w"))

    def applies(self, match: Match) -> bool:
        w, x = match["w"], match["x"]
        return w.dtype == "float32" and x.dtype == "float32" and w.type.rank == 2 and w.type.numel >= self.min_elements

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        w = match["w"]
        transpose_b = self.op_name == "dense"  # dense keeps W as [N, K]; matmul's right operand is [K, N]
        q, scales = quantize_per_channel(np.asarray(w.value, dtype=np.float32), 0 if transpose_b else 1, self.bits)
        name = match.root.name
        inputs = [rw.value(match["x"]), rw.constant(q, f"{w.name}_int8"), rw.constant(scales, f"{w.name}_scale")]
        return rw.make("matmul_dequant", inputs, {"transpose_b": transpose_b}, name=name)


@dataclass(frozen=True)
class QuantizeWeights(Pass):
    """Quantize constant dense/matmul weights to int8 per output channel (module docstring)."""

    bits: int = 8
    min_elements: int = 0

    def __post_init__(self) -> None:
        if self.bits not in SUPPORTED_BITS:
            raise ValueError(f"QuantizeWeights: bits={self.bits!r} is not supported; supported: {list(SUPPORTED_BITS)}")

    def run(self, graph: Graph) -> Graph:
        patterns = [_QuantizeWeight("dense", self.min_elements, self.bits)]  # W [N, K]: torch.nn.Linear
        patterns.append(_QuantizeWeight("matmul", self.min_elements, self.bits))  # W [K, N]: GPT-2's Conv1D
        return apply_patterns(graph, patterns)
