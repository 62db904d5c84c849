"""The whole graph as a Relax module: one `R.call_tir` per kernel, weights as Relax constants.

    @R.function
    def main(x: R.Tensor((1, 3, 16, 16), "float32")):
        with R.dataflow():
            lv = R.call_tir(cls.fused_conv2d_bn_relu, (x, metadata["relax.expr.Constant"][0], ...),
                            out_ty=R.Tensor((1, 16, 16, 16), "float32"))
            ...

Relax sees each kernel as an opaque PrimFunc; memory planning, the calling convention and the VM
bytecode come from TVM's own passes (see build.py). Identical kernels (same op, attributes and
input types) are lowered once and called from several places, as TVM does after FuseTIR.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from mlc_lab.codegen.tvm.inplace import cache_write_inplace, writes_in_place
from mlc_lab.codegen.tvm.lower import Kernel, ScheduleFn, lower_node, sanitize
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.types import SymDim


def kernel_key(node: Node) -> Hashable:
    """Two nodes with the same key compute the same function of their inputs: they share a kernel."""
    return (node.op, _attrs_key(node.attrs), tuple((x.shape, x.dtype) for x in node.inputs))


def _attrs_key(attrs: Any) -> Hashable:
    items = []
    for key, value in sorted(attrs.items()):
        if key == "pattern":
            continue
        if isinstance(value, Graph):
            value = _graph_key(value)
        elif isinstance(value, np.ndarray):  # a constant inside a sub-graph: lifted to a kernel input
            value = (value.shape, value.dtype.name)
        items.append((key, value))
    return tuple(items)


def _graph_key(graph: Graph) -> Hashable:
    index = {n: k for k, n in enumerate(graph.nodes)}
    nodes = tuple((n.op, n.type, _attrs_key(n.attrs), tuple(index[i] for i in n.inputs)) for n in graph.nodes)
    return nodes, tuple(index[o] for o in graph.outputs)


def lower_kernels(graph: Graph, schedule: ScheduleFn | None = None) -> dict[Node, Kernel]:
    """A kernel for every op node of `graph`, shared between nodes with the same `kernel_key`."""
    by_key: dict[Hashable, Kernel] = {}
    names: set[str] = set()
    kernels: dict[Node, Kernel] = {}
    users = graph.users()
    for node in graph.ops:
        inplace = writes_in_place(node, graph, users)
        key = (kernel_key(node), inplace)
        if key not in by_key:
            name = _fresh(kernel_name(node) + ("_inplace" if inplace else ""), names)
            by_key[key] = (
                Kernel(name, cache_write_inplace(node, name), node, inplace=(0,))
                if inplace
                else lower_node(node, schedule, name)
            )
        kernels[node] = by_key[key]
    return kernels


def kernel_name(node: Node) -> str:
    """Kernels are named after what they compute, as in TVM: 'conv2d', 'fused_conv2d_bn_relu'.

    (Not after the node: one kernel may serve several nodes.)
    """
    if node.op == "fused":
        return sanitize("_".join(filter(None, ["fused", node.attrs.get("pattern", "")])))
    return node.op


def _fresh(name: str, taken: set[str]) -> str:
    candidate, k = name, 1
    while candidate in taken or candidate == "main":
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate


def constant(array: np.ndarray) -> relax.Constant:
    """A Relax constant of the array's own dtype and shape.

    `relax.const(np.array(v))` alone turns a 0-d int64/float64 array into int32/float32 (it treats it
    as a Python scalar), so the kernel that reads it would see the wrong type.
    """
    return relax.const(np.require(array, requirements="C"), array.dtype.name)


def tensor_type(node: Node, symbols: dict[str, tvm.tirx.Var] | None = None) -> relax.TensorType:
    """The node's Relax type; a symbolic dimension is the function's shape variable of that name (int64)."""
    shape = [symbols.setdefault(d.name, tvm.tirx.Var(d.name, "int64")) if isinstance(d, SymDim) else d
             for d in node.shape] if symbols is not None else list(node.shape)  # fmt: skip
    return relax.TensorType(shape, node.dtype)


def to_relax(graph: Graph, kernels: dict[Node, Kernel]) -> tvm.IRModule:
    """The Relax module: `main(inputs...) -> tuple of outputs`, each op a call_tir of its kernel.

    Symbolic dimensions become Relax shape variables, bound from the arguments' shapes at each call;
    their upper bounds go to the function's `tir_var_upper_bound`, so memory planning still allocates
    every intermediate once, at its largest size.
    """
    bb = relax.BlockBuilder()
    symbols: dict[str, tvm.tirx.Var] = {}
    params = [relax.Var(sanitize(x.name), tensor_type(x, symbols)) for x in graph.inputs]
    bounds = {d.name: d.upper for node in graph.nodes for d in node.type.symbols.values()}
    gvars: dict[str, relax.GlobalVar] = {}
    with bb.function("main", params, attrs={"tir_var_upper_bound": bounds} if bounds else None):
        with bb.dataflow():
            env: dict[Node, relax.Expr] = dict(zip(graph.inputs, params))
            for node in graph.nodes:
                if node.op == "input":
                    continue
                if node.op == "constant":
                    env[node] = constant(node.value)
                    continue
                kernel = kernels[node]
                if kernel.name not in gvars:
                    gvars[kernel.name] = bb.add_func(kernel.func, kernel.name)
                args = [env[x] for x in node.inputs] + [constant(c) for c in kernel.constants]
                out_ty = tensor_type(node, symbols)
                if kernel.inplace:  # the result is the argument's own buffer, written by the kernel
                    call = relax.call_tir_inplace(gvars[kernel.name], args, list(kernel.inplace), out_ty)
                else:
                    call = relax.call_tir(gvars[kernel.name], args, out_ty)
                env[node] = bb.emit(call, name_hint=sanitize(node.name))
            result = bb.emit_output(relax.Tuple([env[o] for o in graph.outputs]))
        bb.emit_func_output(result)
    return bb.get()
