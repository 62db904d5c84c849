"""Rewrite patterns and the greedy driver that applies them until nothing matches.

A `RewritePattern` pairs a `Pattern` with a check (`applies`) and a `rewrite` that builds the
replacement of the match's root. `apply_patterns(graph, patterns)` sweeps the graph in order:

1. on the unchanged graph, find at each node the first pattern that matches and applies; a match
   that inspects a node another match of this sweep already replaces waits for the next sweep;
2. rebuild the graph: each matched root is replaced by what its rewrite returns, and the inspected
   nodes only that match used are dropped (so the replacement may reuse their names and place);
3. repeat until a sweep matches nothing, then remove dead code.

The IR is immutable (passes build new graphs), so the driver works in sweeps rather than on a
worklist, like MLIR's greedy driver run to a fixpoint one walk at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir import Graph, GraphRewriter, Node, OpError, TensorType, get_op
from mlc_lab.passes.dce import DeadCodeElimination
from mlc_lab.passes.rewrite.pattern import Match, MatchContext, Pattern

#: Sweeps before the driver gives up: rewrites that undo each other would otherwise loop forever.
MAX_SWEEPS = 100


class RewriteError(MlcLabError, RuntimeError):
    """A rewrite built something wrong (a type change, a dropped value) or never reached a fixpoint."""


class RewritePattern:
    """Subclass: set `pattern`, implement `rewrite(match, rw)`; override `applies` for checks that
    relate several matched nodes (a pattern describes each node on its own)."""

    pattern: Pattern

    @property
    def name(self) -> str:
        return type(self).__name__

    def applies(self, match: Match) -> bool:
        return True

    def rewrite(self, match: Match, rw: Rewriter) -> Node:
        """The node that replaces `match.root`, of the root's type, built with `rw`."""
        raise NotImplementedError(f"{self.name}.rewrite")


class Rewriter(GraphRewriter):
    """What a rewrite builds with: the new graph's value of an old node, and new nodes in order."""

    def __init__(self, graph: Graph, plans: Mapping[Node, tuple[RewritePattern, Match]], erased: set[Node]) -> None:
        super().__init__(graph)
        self.plans = plans
        self.erased = erased

    def value(self, old: Node) -> Node:
        """The node standing for `old` (a node of the graph being rewritten) in the new graph."""
        if old in self.erased:
            raise RewriteError(f"%{old.name} was consumed by the match; a rewrite cannot read it back")
        try:
            return self.mapping[old]
        except KeyError:
            raise RewriteError(f"%{old.name} is not defined before the node being rewritten") from None

    def make(self, op: str, inputs: Sequence[Node], attrs: Mapping[str, Any] | None = None, *, name: str) -> Node:
        """A new `op` node on new-graph `inputs`; attributes checked and its type inferred by the registry."""
        try:
            opdef = get_op(op)
            opdef.check_arity(len(inputs))
            full = opdef.normalize_attrs(dict(attrs or {}))
            ty = opdef.infer([x.type for x in inputs], full)
        except OpError as e:
            raise RewriteError(f"building %{name}: {e}") from None
        return self.emit(Node(op, tuple(inputs), full, ty, name))

    def constant(self, value: np.ndarray, name: str) -> Node:
        attrs = get_op("constant").normalize_attrs({"value": np.asarray(value)})
        return self.emit(Node("constant", (), attrs, TensorType.of(attrs["value"]), name))

    def keep(self, node: Node) -> bool:
        return node not in self.erased

    def rewrite(self, node: Node, inputs: tuple[Node | None, ...]) -> Node | None:
        if node not in self.plans:
            return super().rewrite(node, inputs)
        pattern, match = self.plans[node]
        new = pattern.rewrite(match, self)
        if not isinstance(new, Node):
            raise RewriteError(f"{pattern.name} returned {type(new).__name__} for %{node.name}, not a Node")
        if new.type != node.type:
            raise RewriteError(f"{pattern.name} replaced %{node.name} ({node.type}) by %{new.name} of type {new.type}")
        return new


def consumed(match: Match, ctx: MatchContext) -> set[Node]:
    """The inspected nodes nothing outside the match reads: the rewrite of the root makes them dead."""
    inside = set(match.nodes) - {match.root}
    inside = {n for n in inside if n.op != "input"}
    changed = True
    while changed:
        changed = False
        for n in list(inside):
            if n in ctx.outputs or any(u is not match.root and u not in inside for u in ctx.users.get(n, ())):
                inside.discard(n)
                changed = True
    return inside


def _plan(graph: Graph, patterns: Sequence[RewritePattern]) -> tuple[dict, set[Node]]:
    ctx = MatchContext.of(graph)
    plans: dict[Node, tuple[RewritePattern, Match]] = {}
    erased: set[Node] = set()
    for node in graph.nodes:
        for pattern in patterns:
            match = next(
                (
                    m
                    for m in pattern.pattern.matches(node, ctx)
                    if not any(n in plans or n in erased for n in m.nodes) and pattern.applies(m)
                ),
                None,
            )
            if match is not None:
                plans[node] = (pattern, match)
                erased |= consumed(match, ctx)
                break
    return plans, erased


def apply_patterns(graph: Graph, patterns: Sequence[RewritePattern], max_sweeps: int = MAX_SWEEPS) -> Graph:
    """Rewrite with `patterns` (earlier ones win at a node) until none matches, then drop dead code."""
    for _ in range(max_sweeps):
        plans, erased = _plan(graph, patterns)
        if not plans:
            return DeadCodeElimination().apply(graph)
        graph = Rewriter(graph, plans, erased).run()
    names = ", ".join(p.name for p in patterns)
    raise RewriteError(f"rewrites [{names}] still matched after {max_sweeps} sweeps (do two of them undo each other?)")
