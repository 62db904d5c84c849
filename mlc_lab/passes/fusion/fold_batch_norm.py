"""Fold inference batch norm into the convolution before it.

    bn(conv(x, W) + b) = conv(x, W * s) + (b - mean) * s + beta,   s = gamma / sqrt(var + eps)

per output channel. Afterwards the network has no batch_norm left: one op and four parameter
tensors fewer per block, and the remaining conv+bias_add(+relu) fuses into one kernel.
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir import Graph, GraphRewriter, Node
from mlc_lab.ir import layout as L
from mlc_lab.ir.ops import get_op
from mlc_lab.passes.base import Pass
from mlc_lab.passes.dce import DeadCodeElimination

_CHANNEL_AXIS = {"NCHW": 1, "NHWC": 3}


def _fold_target(bn: Node, users: dict[Node, list[Node]], outputs: set[Node]) -> tuple[Node, Node | None] | None:
    """(conv, bias_add or None) when `bn` can be folded, else None."""
    if any(p.op != "constant" for p in bn.inputs[1:]):
        return None
    prev = bn.inputs[0]
    bias = None
    if prev.op == "bias_add" and prev.inputs[1].op == "constant":
        bias, prev = prev, prev.inputs[0]
    conv = prev
    if conv.op != "conv2d" or conv.inputs[1].op != "constant":
        return None
    layout = conv.attrs["data_layout"]
    axis = _CHANNEL_AXIS.get(layout)
    if axis is None or bn.attrs["axis"] % 4 != axis:
        return None
    if bias is not None and bias.attrs["axis"] % 4 != axis:
        return None
    chain = [conv] + ([bias] if bias else [])
    if any(len(users[n]) != 1 or n in outputs for n in chain):
        return None
    return conv, bias


class FoldBatchNorm(Pass):
    def run(self, graph: Graph) -> Graph:
        users = graph.users()
        outputs = set(graph.outputs)
        plans: dict[Node, tuple[Node, Node | None]] = {}
        for node in graph.nodes:
            if node.op == "batch_norm":
                target = _fold_target(node, users, outputs)
                if target:
                    plans[node] = target
        absorbed = {n for conv, bias in plans.values() for n in (conv, bias) if n is not None}

        class _Folder(GraphRewriter):
            def keep(self, node: Node) -> bool:
                return node not in absorbed

            def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
                if node not in plans:
                    return super().rewrite(node, inputs)
                conv, bias = plans[node]
                gamma, beta, mean, var = (p.value.astype(np.float64) for p in node.inputs[1:])
                scale = gamma / np.sqrt(var + node.attrs["eps"])
                kernel_layout = conv.attrs["kernel_layout"]
                w = L.from_layout(conv.inputs[1].value.astype(np.float64), "OIHW", kernel_layout)
                w = L.to_layout(w * scale[:, None, None, None], "OIHW", kernel_layout)
                b = bias.inputs[1].value.astype(np.float64) if bias is not None else np.zeros_like(mean)
                dtype = conv.type.dtype
                new_w = self.emit(_constant(w.astype(dtype), f"{conv.inputs[1].name}_folded"))
                new_b = self.emit(_constant(((b - mean) * scale + beta).astype(dtype), f"{node.name}_bias"))
                x = self.mapping[conv.inputs[0]]
                attrs = dict(conv.attrs)
                new_conv = self.emit(Node("conv2d", (x, new_w), attrs, conv.type, conv.name))
                axis = _CHANNEL_AXIS[attrs["data_layout"]]
                return self.emit(Node("bias_add", (new_conv, new_b), {"axis": axis}, node.type, node.name))

        return DeadCodeElimination().apply(_Folder(graph).run())  # drop the consumed BN parameters


def _constant(value: np.ndarray, name: str) -> Node:
    from mlc_lab.ir import TensorType

    attrs = get_op("constant").normalize_attrs({"value": value})
    return Node("constant", (), attrs, TensorType.of(value), name)
