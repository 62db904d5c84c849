"""Build graphs op by op: `b.conv2d(x, w, strides=2)` checks attributes and infers the result type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import OPS, OpError, get_op, is_source
from mlc_lab.ir.types import TensorType


class GraphBuilder:
    """Appends nodes in order, so a built graph is always topologically sorted.

    Every registered op is a method: `b.relu(x)`, `b.dense(x, w)`, `b.conv2d(x, w, padding=1)`.
    """

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self._names: set[str] = set()
        self._counter: dict[str, int] = {}

    def unique_name(self, base: str) -> str:
        base = base or "v"
        name = base
        while name in self._names:
            k = self._counter.get(base, 0) + 1
            self._counter[base] = k
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def input(self, name: str, shape: Sequence[int], dtype: str = "float32") -> Node:
        try:
            ty = TensorType(tuple(shape), dtype)
        except (TypeError, ValueError) as e:  # a bad dimension or dtype: say which input it was
            raise type(e)(f"input %{name}: {e}") from None
        node = Node("input", (), None, ty, self.unique_name(name))
        self.nodes.append(node)
        self.inputs.append(node)
        return node

    def constant(self, value: Any, name: str = "const", dtype: str | None = None) -> Node:
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)  # Python floats become f32, the IR's working type
        return self.op("constant", value=array, name=name)

    def op(self, op: str, *inputs: Node, name: str | None = None, **attrs: Any) -> Node:
        opdef = get_op(op)
        label = name or op
        for i, x in enumerate(inputs):
            if not isinstance(x, Node):
                raise OpError(f"{op} (%{label}): input {i} is a {type(x).__name__}, not a Node")
        try:
            opdef.check_arity(len(inputs))
            attrs = opdef.normalize_attrs(attrs)
            ty = opdef.infer([x.type for x in inputs], attrs)
        except OpError as e:
            raise OpError(f"node %{label}: {e}") from None
        node = Node(op, inputs, attrs, ty, self.unique_name(label))
        self.nodes.append(node)
        return node

    def add_node(self, node: Node) -> Node:
        """Append a ready-made node (keeps its name if free)."""
        if node.name in self._names:
            node.name = self.unique_name(node.name)
        else:
            self._names.add(node.name)
        self.nodes.append(node)
        return node

    def __getattr__(self, op: str):
        if op in OPS and not is_source(op):
            return lambda *inputs, **attrs: self.op(op, *inputs, **attrs)
        raise AttributeError(f"GraphBuilder has no method or op {op!r}")

    def build(self, outputs: Node | Sequence[Node], verify: bool = True) -> Graph:
        outputs = [outputs] if isinstance(outputs, Node) else list(outputs)
        graph = Graph(self.nodes, self.inputs, outputs, self.name)
        return graph.verify() if verify else graph
