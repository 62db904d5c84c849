"""Fold inference batch norm into the convolution before it.

    bn(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps)

per output channel. Afterwards the network has no batch_norm left: one op and four parameter
tensors fewer per block, and the remaining conv+bias_add(+relu) fuses into one kernel.
A rewrite pattern; the greedy driver applies it and drops the consumed parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import Graph, Node
from mlc_lab.ir import layout as L
from mlc_lab.ir.ops import channel_axis
from mlc_lab.passes.base import Pass
from mlc_lab.passes.rewrite import Match, RewritePattern, Rewriter, apply_patterns, const, op, wildcard

#: Layouts whose channels live on one axis (a blocked NCHW8c splits them over two: no fold there).
_FOLDABLE_LAYOUTS = frozenset({"NCHW", "NHWC"})

_CONV = op("conv2d")(wildcard("x"), const("weight")).one_use().named("conv")
_BIAS = op("bias_add")(_CONV, const("bias")).one_use().named("bias_add")


class FoldBatchNormIntoConv(RewritePattern):
    """batch_norm(conv2d(x, W)) and batch_norm(bias_add(conv2d(x, W), b)), constant parameters,
    normalizing the convolution's channel axis: one conv2d and one bias_add."""

    pattern = op("batch_norm")(_BIAS | _CONV, const(), const(), const(), const())

    def applies(self, match: Match) -> bool:
        conv = match["conv"]
        if conv.attrs["data_layout"] not in _FOLDABLE_LAYOUTS:
            return False
        axis = channel_axis(conv.op, conv.attrs, conv.type.rank)
        channelwise = [match.root] + ([match["bias_add"]] if "bias_add" in match else [])
        return all(channel_axis(n.op, n.attrs, n.type.rank) == axis for n in channelwise)

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        bn, conv = match.root, match["conv"]
        gamma, beta, mean, var = (p.value.astype(np.float64) for p in bn.inputs[1:])
        scale = gamma / np.sqrt(var + bn.attrs["eps"])
        kernel_layout = conv.attrs["kernel_layout"]
        weight = match["weight"]
        w = L.from_layout(weight.value.astype(np.float64), "OIHW", kernel_layout)
        w = L.to_layout(w * scale[:, None, None, None], "OIHW", kernel_layout)
        b = match["bias"].value.astype(np.float64) if "bias" in match else np.zeros_like(mean)
        dtype = conv.type.dtype
        new_w = rw.constant(w.astype(dtype), f"{weight.name}_folded")
        new_b = rw.constant(((b - mean) * scale + beta).astype(dtype), f"{bn.name}_bias")
        new_conv = rw.make("conv2d", (rw.value(match["x"]), new_w), conv.attrs, name=conv.name)
        axis = channel_axis(conv.op, conv.attrs, conv.type.rank)
        return rw.make("bias_add", (new_conv, new_b), {"axis": axis}, name=bn.name)


@dataclass(frozen=True)
class FoldBatchNorm(Pass):
    def run(self, graph: Graph) -> Graph:
        return apply_patterns(graph, [FoldBatchNormIntoConv()])
