"""Dead-code elimination: drop every node no output depends on (graph inputs always stay)."""

from __future__ import annotations

from dataclasses import dataclass

from mlc_lab.ir import Graph, GraphRewriter, Node
from mlc_lab.ir.graph import reachable
from mlc_lab.passes.base import Pass


def live_nodes(graph: Graph) -> set[Node]:
    """Nodes reachable backwards from the outputs."""
    return reachable(graph.outputs)


@dataclass(frozen=True)
class DeadCodeElimination(Pass):
    def run(self, graph: Graph) -> Graph:
        live = live_nodes(graph) | set(graph.inputs)

        class _Keep(GraphRewriter):
            def keep(self, node: Node) -> bool:
                return node in live

        return _Keep(graph).run()
