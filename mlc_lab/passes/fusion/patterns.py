"""Fusion patterns as data: a chain of steps, each a set of ops that may appear there.

A match starts at a node whose op fits the first step and follows single-user edges forward.
Optional steps may be skipped (a conv with or without its bias_add). The matcher is deliberately
small: the book's exercise asks the reader to write it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlc_lab.ir import Graph, Node


@dataclass(frozen=True)
class Step:
    ops: frozenset[str]
    optional: bool = False


@dataclass(frozen=True)
class Pattern:
    name: str
    steps: tuple[Step, ...]

    def __str__(self) -> str:
        parts = ["|".join(sorted(s.ops)) + ("?" if s.optional else "") for s in self.steps]
        return f"{self.name}: " + " -> ".join(parts)


def chain(name: str, *steps: str) -> Pattern:
    """chain("conv2d_relu", "conv2d", "bias_add?", "relu"): '|' separates alternatives, '?' marks optional."""
    return Pattern(name, tuple(Step(frozenset(s.rstrip("?").split("|")), s.endswith("?")) for s in steps))


PATTERNS: dict[str, Pattern] = {
    p.name: p
    for p in [
        chain("conv2d_bn_relu", "conv2d", "bias_add?", "batch_norm", "relu"),
        chain("conv2d_bn", "conv2d", "bias_add?", "batch_norm"),
        chain("conv2d_relu", "conv2d", "bias_add?", "relu"),
        chain("conv2d_add_relu", "conv2d", "bias_add?", "batch_norm?", "add", "relu"),
        chain("matmul_add_relu", "matmul|dense", "add|bias_add", "relu"),
        chain("matmul_add_gelu", "matmul|dense", "add|bias_add", "gelu"),
        chain("matmul_add", "matmul|dense", "add|bias_add"),
    ]
}


def match_chain(pattern: Pattern, start: Node, users: dict[Node, list[Node]], outputs: set[Node]) -> list[Node] | None:
    """The nodes of `pattern` matched from `start`, or None.

    Every matched node except the last must have exactly one user (the next node) and must not be a
    graph output: otherwise fusing would hide a value someone else reads.
    """
    first, *rest = pattern.steps
    if start.op not in first.ops:
        return None
    matched = [start]
    for step in rest:
        current = matched[-1]
        following = users[current]
        nxt = following[0] if len(following) == 1 and current not in outputs else None
        if nxt is not None and nxt.op in step.ops:
            matched.append(nxt)
        elif not step.optional:
            return None
    return matched


def find_matches(graph: Graph, patterns: Sequence[Pattern]) -> list[tuple[list[Node], str]]:
    """Greedy, in graph order; at each node the first pattern in `patterns` that matches wins."""
    users = graph.users()
    outputs = set(graph.outputs)
    taken: set[Node] = set()
    groups = []
    for node in graph.nodes:
        if node in taken:
            continue
        for pattern in patterns:
            members = match_chain(pattern, node, users, outputs)
            if members and len(members) > 1 and not taken & set(members):
                groups.append((members, pattern.name))
                taken |= set(members)
                break
    return groups
