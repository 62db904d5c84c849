"""From graph ops to what accelerators run: GEMMs (conv2d, dense, matmul) and everything else.

Matrix engines (a systolic array, a wafer's cores, a CGRA's MAC units) run matrix products. A
convolution becomes one by im2col: each output pixel's receptive field is unrolled into a row, so

    conv2d  ->  A (M x K) @ B (K x N),  M = N_batch * OH * OW,  K = C/groups * KH * KW,  N = F/groups

once per group. `dense` is x @ w.T; a batched `matmul` is one GEMM per batch element. Every other op
(batch norm, ReLU, pooling, adds) runs on a vector unit and is charged its element operations.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlc_lab.ir import Graph, GraphBuilder, Node, Trait, has_trait, node_cost
from mlc_lab.ir import layout as L
from mlc_lab.passes.decompose import Decompose, has_own_compute


@dataclass(frozen=True)
class GemmView:
    """A GEMM-able node as `count` independent products (M x K) @ (K x N)."""

    m: int
    n: int
    k: int
    count: int = 1  # groups of a conv, batch elements of a matmul

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


def flatten(graph: Graph, keep: Collection[str] = ()) -> Graph:
    """Inline every `fused` node's sub-graph, so backends see plain ops (they do their own grouping).

    An op known only by its decomposition is replaced by it, so its parts are costed (and mapped) like
    any other op: the simulators need no code for a new composite op. Ops in `keep` stay nodes (a
    backend that runs them itself: the systolic array's int8 `matmul_dequant`).
    """
    graph = Decompose(native=lambda op: op in keep or has_own_compute(op)).apply(graph)
    if not any(n.op == "fused" for n in graph.nodes):
        return graph
    b = GraphBuilder(graph.name)
    mapping: dict[Node, Node] = {}
    for node in graph.nodes:
        if node.op == "input":
            mapping[node] = b.input(node.name, node.type.shape, node.type.dtype)
        elif node.op == "fused":
            sub = flatten(node.subgraph, keep)
            inner: dict[Node, Node] = dict(zip(sub.inputs, (mapping[x] for x in node.inputs)))
            for s in sub.nodes:
                if s.op != "input":
                    inner[s] = b.add_node(Node(s.op, [inner[x] for x in s.inputs], s.attrs, s.type, s.name))
            mapping[node] = inner[sub.outputs[0]]
        else:
            inputs = [mapping[x] for x in node.inputs]
            mapping[node] = b.add_node(Node(node.op, inputs, node.attrs, node.type, node.name))
    return b.build([mapping[o] for o in graph.outputs])


def _conv_dims(node: Node) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int], tuple[int, int, int, int]]:
    x = L.canonical_shape(node.inputs[0].type.shape, "NCHW", node.attrs["data_layout"])
    w = L.canonical_shape(node.inputs[1].type.shape, "OIHW", node.attrs["kernel_layout"])
    y = L.canonical_shape(node.type.shape, "NCHW", node.attrs["data_layout"])
    return x, w, y


def gemm_view(node: Node) -> GemmView | None:
    """The GEMM shape of a conv2d/dense/matmul node; None for every other op, and for an empty GEMM.

    A GEMM with a dimension of 0 (an empty batch, an inner dimension of 0) does no work on the array:
    it runs as an ordinary op (its result, zeros or nothing, comes from the reference semantics).
    """
    view = _gemm_view(node)
    if view is not None and min(view.m, view.n, view.k, view.count) == 0:
        return None
    return view


def _gemm_view(node: Node) -> GemmView | None:
    if not has_trait(node.op, Trait.GEMM):
        return None
    if node.op == "conv2d":
        _, (o, i, kh, kw), (n, _, oh, ow) = _conv_dims(node)
        g = node.attrs["groups"]
        return GemmView(n * oh * ow, o // g, i * kh * kw, g)
    if node.op == "dense":
        out_f, in_f = node.inputs[1].type.shape
        return GemmView(int(np.prod(node.type.shape[:-1], dtype=np.int64)), out_f, in_f)
    if node.op == "matmul":
        *batch, m, n = node.type.shape
        return GemmView(m, n, node.inputs[0].type.shape[-1], int(np.prod(batch, dtype=np.int64)))
    raise NotImplementedError(f"%{node.name}: {node.op} is a GEMM op (Trait.GEMM) with no GEMM view in lowering.py")


def graph_gemms(graph: Graph) -> list[tuple[int, int, int]]:
    """(M, N, K) of every GEMM a graph lowers to (conv groups and matmul batches repeated)."""
    out = []
    for node in flatten(graph).ops:
        view = gemm_view(node)
        if view is not None:
            out += [(view.m, view.n, view.k)] * view.count
    return out


def gemm_operands(node: Node, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lowered operands: A (count x M x K) and B (count x K x N)."""
    view = gemm_view(node)
    if view is None:
        raise ValueError(f"%{node.name} ({node.op}) is not a GEMM op")
    if node.op == "conv2d":
        return _im2col(node, x, w)
    if node.op == "dense":
        return x.reshape(1, view.m, view.k), np.ascontiguousarray(w.T)[None]
    batch = node.type.shape[:-2]
    a = np.broadcast_to(x, (*batch, *x.shape[-2:])).reshape(view.count, view.m, view.k)
    b = np.broadcast_to(w, (*batch, *w.shape[-2:])).reshape(view.count, view.k, view.n)
    return a, b


def _im2col(node: Node, x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    (_, c, _, _), (o, i, kh, kw), (n, _, oh, ow) = _conv_dims(node)
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = node.attrs["strides"], node.attrs["dilation"], node.attrs["padding"]
    g = node.attrs["groups"]
    xc = L.from_layout(x, "NCHW", node.attrs["data_layout"])
    wc = L.from_layout(w, "OIHW", node.attrs["kernel_layout"])
    xp = np.pad(xc, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh, :ow]  # N, C, OH, OW, KH, KW
    rows = win.transpose(1, 0, 2, 3, 4, 5).reshape(g, i, n * oh * ow, kh * kw)  # group, C/g, M, KH*KW
    a = rows.transpose(0, 2, 1, 3).reshape(g, n * oh * ow, i * kh * kw)  # K ordered (c, kh, kw)
    b = wc.reshape(g, o // g, i * kh * kw).transpose(0, 2, 1)
    return a, b


def gemm_result(node: Node, c: np.ndarray) -> np.ndarray:
    """Fold the GEMM results (count x M x N) back into the node's output tensor."""
    if node.op == "conv2d":
        (n, o, oh, ow) = L.canonical_shape(node.type.shape, "NCHW", node.attrs["data_layout"])
        y = c.transpose(1, 0, 2).reshape(n, oh, ow, o).transpose(0, 3, 1, 2)  # groups' filters side by side
        return np.ascontiguousarray(L.to_layout(y, "NCHW", node.attrs["data_layout"]))
    return c.reshape(node.type.shape)


def vector_ops(node: Node) -> int:
    """Element operations a non-GEMM op costs on a vector unit: its FLOPs by the registry's cost rule
    (0 for sources and for ops that only move data)."""
    return node_cost(node).flops


def weight_bytes(node: Node) -> int:
    """Bytes of the compile-time constants a node reads (its weights and parameters)."""
    return sum(x.type.nbytes for x in node.inputs if x.op == "constant")
