"""Cancel layout transforms that undo each other: transform(transform(x, A->B), B->A) is x.

The layout pass inserts transforms at every boundary it meets; where two boundaries touch, the
pair is redundant. (A->B then B->C also collapses into one A->C transform.)
"""

from __future__ import annotations

from mlc_lab.ir import Graph, GraphRewriter, Node
from mlc_lab.passes.base import Pass
from mlc_lab.passes.dce import DeadCodeElimination


def cancel_pair(node: Node, source: Node) -> Node | None:
    """If `node` is a transform of a transform, what it reduces to: the original value (the two
    cancel) or None (keep a single, merged transform; see CancelLayoutTransforms)."""
    if node.op != "layout_transform" or source.op != "layout_transform":
        return None
    if node.attrs["dst_layout"] == source.attrs["src_layout"]:
        return source.inputs[0]
    return None


class CancelLayoutTransforms(Pass):
    def run(self, graph: Graph) -> Graph:
        class _Canceller(GraphRewriter):
            def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
                if node.op == "layout_transform" and inputs[0].op == "layout_transform":
                    inner = inputs[0]
                    undone = cancel_pair(node, inner)
                    if undone is not None:
                        return undone
                    attrs = {"src_layout": inner.attrs["src_layout"], "dst_layout": node.attrs["dst_layout"]}
                    return self.emit(Node(node.op, inner.inputs, attrs, node.type, node.name))
                if node.op == "layout_transform" and node.attrs["src_layout"] == node.attrs["dst_layout"]:
                    return inputs[0]
                return super().rewrite(node, inputs)

        return DeadCodeElimination().apply(_Canceller(graph).run())
