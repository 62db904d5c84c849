"""Pattern-based operator fusion: conv2d+bn+relu, matmul+add(+relu/gelu) become one kernel each."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlc_lab.ir import Graph
from mlc_lab.passes.base import Pass
from mlc_lab.passes.fusion.group import outline_groups
from mlc_lab.passes.fusion.patterns import PATTERNS, Pattern, find_matches


def _resolve(p: str | Pattern) -> Pattern:
    if isinstance(p, Pattern):
        return p
    if p in PATTERNS:
        return PATTERNS[p]
    raise ValueError(f"unknown fusion pattern {p!r}; known patterns: {', '.join(PATTERNS)}")


@dataclass(frozen=True)
class OperatorFusionPass(Pass):
    """Fuse the named patterns. Longer patterns are tried first, so conv2d_bn_relu wins over conv2d_bn.

    fusion_patterns: names in `PATTERNS` or `Pattern`s built with `chain(...)`.
    """

    fusion_patterns: Sequence[str | Pattern] = ("conv2d_bn_relu", "matmul_add")

    def __post_init__(self) -> None:
        if isinstance(self.fusion_patterns, (str, Pattern)):
            got = self.fusion_patterns
            raise TypeError(f"OperatorFusionPass: fusion_patterns must be a list of patterns, got {got!r}")
        object.__setattr__(self, "fusion_patterns", tuple(self.fusion_patterns))
        resolved = [_resolve(p) for p in self.fusion_patterns]
        object.__setattr__(self, "patterns", tuple(sorted(resolved, key=lambda p: -len(p.steps))))

    def run(self, graph: Graph) -> Graph:
        return outline_groups(graph, find_matches(graph, self.patterns))
