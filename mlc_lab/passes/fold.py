"""Constant folding: an op whose inputs are all constants is computed now, at compile time.

The reference interpreter's kernels do the computing, so a folded value is bit-for-bit what the
op would have produced at run time.
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir import OPS, Graph, GraphRewriter, Node
from mlc_lab.passes.base import Pass


class FoldConstants(Pass):
    """Replace ops with only-constant inputs by a constant. `max_elements` bounds folded sizes
    (folding a broadcast can make a constant far bigger than its inputs)."""

    def __init__(self, max_elements: int | None = None) -> None:
        self.max_elements = max_elements

    def run(self, graph: Graph) -> Graph:
        return _Folder(graph, self.max_elements).run()


class _Folder(GraphRewriter):
    def __init__(self, graph: Graph, max_elements: int | None) -> None:
        super().__init__(graph)
        self.max_elements = max_elements

    def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
        foldable = (
            node.op not in ("input", "constant")
            and all(x.op == "constant" for x in inputs)
            and (self.max_elements is None or node.type.numel <= self.max_elements)
        )
        if not foldable:
            return super().rewrite(node, inputs)
        value = np.asarray(OPS[node.op].compute(*(x.value for x in inputs), **node.attrs))
        return self.emit(Node("constant", (), {"value": value}, node.type, node.name))


ConstantFolding = FoldConstants  # the name most compiler texts use
