"""Constant folding: an op whose inputs are all constants is computed now, at compile time.

The reference interpreter's kernels do the computing, so a folded value is bit-for-bit what the
op would have produced at run time.

Folding trades memory for time: a folded broadcast is stored in full, however small its inputs (a
scalar broadcast to 2^15 x 2^15 would become a 4 GiB constant, built at compile time). So a result
larger than `max_elements`, or one that would not fit in free memory, stays a runtime op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import OPS, Graph, GraphRewriter, Node
from mlc_lab.ir.memory import MemoryLimitError, check_fits, tensor_bytes
from mlc_lab.ir.ops import is_source
from mlc_lab.passes.base import Pass

#: The default bound on a folded constant: 2^24 elements (64 MiB of float32). Far above any weight
#: a folded transpose or cast could copy in the zoo's models (the largest, in resnet18, has 589,824
#: elements), far below the broadcasts that would swell a model.
DEFAULT_MAX_ELEMENTS: int = 2**24


@dataclass(frozen=True)
class FoldConstants(Pass):
    """Replace ops with only-constant inputs by a constant.

    max_elements: results with more elements stay runtime ops (default `DEFAULT_MAX_ELEMENTS`;
    None: no bound but free memory, which is always checked).
    """

    max_elements: int | None = DEFAULT_MAX_ELEMENTS

    def __post_init__(self) -> None:
        m = self.max_elements
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
            raise ValueError(f"FoldConstants: max_elements must be a non-negative int or None, got {m!r}")

    def run(self, graph: Graph) -> Graph:
        return _Folder(graph, self.max_elements).run()


class _Folder(GraphRewriter):
    def __init__(self, graph: Graph, max_elements: int | None) -> None:
        super().__init__(graph)
        self.max_elements = max_elements

    def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
        foldable = (
            not is_source(node.op)
            and all(x.op == "constant" for x in inputs)
            and (self.max_elements is None or node.type.numel <= self.max_elements)
            and self._fits(node)
        )
        if not foldable:
            return super().rewrite(node, inputs)
        value = np.asarray(OPS[node.op].compute(*(x.value for x in inputs), **node.attrs))
        return self.emit(Node("constant", (), {"value": value}, node.type, node.name))

    @staticmethod
    def _fits(node: Node) -> bool:
        try:
            check_fits(tensor_bytes(node.type), f"folding %{node.name}")
        except MemoryLimitError:
            return False
        return True


ConstantFolding = FoldConstants  # the name most compiler texts use
