"""Cancel layout transforms that undo each other: transform(transform(x, A->B), B->A) is x.

The layout pass inserts transforms at every boundary it meets; where two boundaries touch, the
pair is redundant. (A->B then B->C also collapses into one A->C transform, and A->A is no transform.)
Three rewrite patterns, applied to a fixpoint by the greedy driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlc_lab.ir import Graph, Node
from mlc_lab.passes.base import Pass
from mlc_lab.passes.rewrite import Match, RewritePattern, Rewriter, apply_patterns, op, wildcard

_TWO_TRANSFORMS = op("layout_transform")(op("layout_transform")(wildcard("x")).named("inner"))


def cancel_pair(node: Node, source: Node) -> Node | None:
    """If `node` is a transform of a transform, what it reduces to: the original value (the two
    cancel) or None (keep a single, merged transform; see CancelLayoutTransforms)."""
    if node.op != "layout_transform" or source.op != "layout_transform":
        return None
    if node.attrs["dst_layout"] == source.attrs["src_layout"]:
        return source.inputs[0]
    return None


class CancelInversePair(RewritePattern):
    """B->A after A->B: the value itself."""

    pattern = _TWO_TRANSFORMS

    def applies(self, match: Match) -> bool:
        return cancel_pair(match.root, match["inner"]) is not None

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        return rw.value(match["x"])


class MergeTransformChain(RewritePattern):
    """B->C after A->B: one A->C transform."""

    pattern = _TWO_TRANSFORMS

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        node, inner = match.root, match["inner"]
        attrs = {"src_layout": inner.attrs["src_layout"], "dst_layout": node.attrs["dst_layout"]}
        return rw.make("layout_transform", (rw.value(match["x"]),), attrs, name=node.name)


class DropIdentityTransform(RewritePattern):
    """A->A: the value itself."""

    pattern = op("layout_transform")(wildcard("x")).where(lambda n: n.attrs["src_layout"] == n.attrs["dst_layout"])

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        return rw.value(match["x"])


CANCEL_PATTERNS: tuple[RewritePattern, ...] = (CancelInversePair(), MergeTransformChain(), DropIdentityTransform())


@dataclass
class CancelLayoutTransforms(Pass):
    def run(self, graph: Graph) -> Graph:
        return apply_patterns(graph, CANCEL_PATTERNS)
