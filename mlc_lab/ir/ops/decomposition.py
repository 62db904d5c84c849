"""Composite ops in simpler registered ops: the sub-graph an op's `decompose` builds.

A decomposition is written with a GraphBuilder, like any graph:

    def _softmax(b, x, axis):
        e = b.exp(b.sub(x, b.max(x, axes=axis, keepdims=True)))
        return b.div(e, b.sum(e, axes=axis, keepdims=True))

`decomposition_graph` runs it on fresh inputs of a node's types and checks that the result has the
node's type. The op stays a graph node (fusion and the chapters see `softmax`); the `Decompose` pass
(`mlc_lab.passes.decompose`) inlines the sub-graph for a backend with no native kernel, and an op
registered with only a decomposition gets its reference compute and FLOPs from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlc_lab.ir.builder import GraphBuilder
    from mlc_lab.ir.graph import Graph, Node
    from mlc_lab.ir.types import TensorType

#: `decompose(builder, *inputs, **attrs) -> output node`, in registered ops only.
Decomposition = Callable[..., "Node"]


class DecompositionError(ValueError):
    """A decomposition built a graph whose output does not have the op's type (the message names the op)."""


def decomposition_graph(op: str, input_types: Sequence[TensorType], attrs: Mapping[str, Any], name: str = "") -> Graph:
    """The sub-graph `op`'s decomposition builds for inputs of `input_types` (inputs %x0, %x1, ...)."""
    from mlc_lab.ir.builder import GraphBuilder
    from mlc_lab.ir.ops.registry import get_op

    opdef = get_op(op)
    if opdef.decompose is None:
        raise DecompositionError(f"{op}: has no decomposition")
    b = GraphBuilder(name or f"{op}_decomposed")
    inputs = [b.input(f"x{i}", t.shape, t.dtype) for i, t in enumerate(input_types)]
    out = opdef.decompose(b, *inputs, **attrs)
    expected = opdef.infer(list(input_types), attrs)
    if out.type != expected:
        raise DecompositionError(f"{op}: its decomposition gives {out.type}, the op's type is {expected}")
    return b.build(out)


def constant_like(b: GraphBuilder, value: float, like: Node, name: str = "c") -> Node:
    """A scalar constant of `like`'s dtype (decompositions must not change dtypes: the builder's default is f32)."""
    return b.constant(np.asarray(value, dtype=like.dtype), name=name)


def decomposed_compute(op: str) -> Callable[..., np.ndarray]:
    """The reference compute of an op known only by its decomposition: interpret the sub-graph."""

    def compute(*inputs: np.ndarray, **attrs: Any) -> np.ndarray:
        from mlc_lab.ir.interpreter import interpret
        from mlc_lab.ir.types import TensorType

        types = [TensorType(np.shape(x), np.asarray(x).dtype.name) for x in inputs]
        return interpret(decomposition_graph(op, types, attrs), *inputs)[0]

    compute.__name__ = f"{op}_decomposed"
    return compute


def decomposed_flops(op: str) -> Callable[[Sequence[TensorType], TensorType, Mapping[str, Any]], int]:
    """FLOPs of a decomposed op: the sum over the ops of its decomposition."""

    def flops(inputs: Sequence[TensorType], output: TensorType, attrs: Mapping[str, Any]) -> int:
        from mlc_lab.ir.ops.registry import node_cost

        return sum(node_cost(n).flops for n in decomposition_graph(op, inputs, attrs).ops)

    return flops
