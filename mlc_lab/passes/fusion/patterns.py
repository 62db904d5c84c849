"""Fusion patterns as data: a chain of steps, each a set of ops that may appear there.

A match starts at a node whose op fits the first step and follows single-user edges forward.
Optional steps may be skipped (a conv with or without its bias_add). `match_chain` is that matcher
written out, deliberately small: the book's exercise asks the reader to write it. The fusion pass
itself compiles each chain into the rewrite pattern language (`rewrite_pattern`) and finds its
matches with it (`find_matches`); on every chain whose optional steps do not share ops with the
step after them (all of PATTERNS) the two agree match for match.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from mlc_lab.ir import Graph, Node
from mlc_lab.passes.rewrite import MatchContext, op
from mlc_lab.passes.rewrite import Pattern as TreePattern


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


@functools.cache
def rewrite_pattern(pattern: Pattern) -> TreePattern:
    """The chain as a tree pattern rooted at its last matched node: every earlier member is read once
    (by the next member, at any input position) and is not a graph output; member k is captured as
    "step{k}", so a match says which optional steps it took."""
    first, *rest = pattern.steps
    acc: TreePattern = op(*first.ops).named("step0")
    for k, step in enumerate(rest, 1):
        taken = op(*step.ops).with_operand(acc.one_use()).named(f"step{k}")
        acc = taken | acc if step.optional else taken
    return acc


def find_matches(graph: Graph, patterns: Sequence[Pattern]) -> list[tuple[list[Node], str]]:
    """Greedy, in graph order of the chains' first nodes; at each node the first pattern in `patterns`
    that matches wins, and where a chain could take or skip an optional step it takes it."""
    ctx = MatchContext.of(graph)
    position = {n: i for i, n in enumerate(graph.nodes)}
    best: dict[tuple[int, int], tuple[tuple[int, ...], list[Node]]] = {}
    for root in graph.nodes:
        for k, pattern in enumerate(patterns):
            for match in rewrite_pattern(pattern).matches(root, ctx):
                if len(match.nodes) < 2:
                    continue
                members = sorted(match.nodes, key=position.__getitem__)  # a single-user path: head first
                skipped = tuple(int(f"step{i}" not in match) for i in range(len(pattern.steps)))
                key = (position[members[0]], k)
                if key not in best or skipped < best[key][0]:
                    best[key] = (skipped, members)
    taken: set[Node] = set()
    groups = []
    for (_, k), (_, members) in sorted(best.items(), key=lambda item: item[0]):
        if not taken & set(members):
            groups.append((members, patterns[k].name))
            taken |= set(members)
    return groups
