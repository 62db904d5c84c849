"""Pattern-based operator fusion: conv2d+bn+relu, matmul+add(+relu/gelu) become one kernel each."""

from __future__ import annotations

from collections.abc import Sequence

from mlc_lab.ir import Graph
from mlc_lab.passes.base import Pass
from mlc_lab.passes.fusion.group import outline_groups
from mlc_lab.passes.fusion.patterns import PATTERNS, Pattern, find_matches


class OperatorFusionPass(Pass):
    """Fuse the named patterns. Longer patterns are tried first, so conv2d_bn_relu wins over conv2d_bn."""

    def __init__(self, fusion_patterns: Sequence[str | Pattern] = ("conv2d_bn_relu", "matmul_add")) -> None:
        patterns = []
        for p in fusion_patterns:
            if isinstance(p, Pattern):
                patterns.append(p)
            elif p in PATTERNS:
                patterns.append(PATTERNS[p])
            else:
                raise ValueError(f"unknown fusion pattern {p!r}; known patterns: {', '.join(PATTERNS)}")
        self.patterns = sorted(patterns, key=lambda p: -len(p.steps))

    def run(self, graph: Graph) -> Graph:
        return outline_groups(graph, find_matches(graph, self.patterns))

    def __repr__(self) -> str:
        return f"OperatorFusionPass({[p.name for p in self.patterns]})"
