"""Cut a graph into pipeline stages: each heavy op (a GEMM) with the cheap ops that follow it.

Spatial accelerators (a wafer, a CGRA) give every stage its own piece of the chip and stream inputs
through all of them at once. A stage is one GEMM op plus the element-wise / pooling / reshaping ops
that read its result (batch norm, ReLU, the residual add), which run on the same cores right after
the multiply-accumulates, so their intermediate values never cross the fabric. Only tensors that go
from one stage to another become fabric traffic (`Edge`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlc_lab.backends.custom.lowering import GemmView, flatten, gemm_view, vector_ops, weight_bytes
from mlc_lab.ir import Graph, Node

#: The stage id standing for the host / the wafer's I/O edge (graph inputs come from it, outputs go to it).
HOST = -1


@dataclass
class Stage:
    index: int
    nodes: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        heavy = [n for n in self.nodes if gemm_view(n) is not None]
        return (heavy or self.nodes)[0].name

    @property
    def gemms(self) -> list[tuple[Node, GemmView]]:
        return [(n, v) for n in self.nodes if (v := gemm_view(n)) is not None]

    @property
    def macs(self) -> int:
        return sum(v.macs for _, v in self.gemms)

    @property
    def vector_ops(self) -> int:
        return sum(vector_ops(n) for n in self.nodes if gemm_view(n) is None)

    @property
    def weight_bytes_fp32(self) -> int:
        return sum(weight_bytes(n) for n in self.nodes)

    def weight_elements(self) -> int:
        return sum(x.type.numel for n in self.nodes for x in n.inputs if x.op == "constant")

    def output_elements(self) -> int:
        """Elements of the largest value the stage produces (its cores' output tiles)."""
        return max(n.type.numel for n in self.nodes)

    def parallelism(self, k_min: int) -> int:
        """Most cores the stage can keep busy: one per output and per `k_min`-long slice of the reduction."""
        if not self.gemms:
            return max(1, self.output_elements())
        return max(v.count * v.m * v.n * max(1, -(-v.k // k_min)) for _, v in self.gemms)

    @property
    def ops(self) -> list[str]:
        return [n.op for n in self.nodes]


@dataclass(frozen=True)
class Edge:
    """A tensor sent from one stage to another (HOST for graph inputs and outputs)."""

    src: int
    dst: int
    elements: int
    value: str


def split_stages(graph: Graph) -> tuple[list[Stage], list[Edge]]:
    """Stages in execution order and the tensors that cross between them."""
    graph = flatten(graph)
    stage_of: dict[Node, int] = {x: HOST for x in graph.inputs}
    stages: list[Stage] = []
    for node in graph.ops:
        latest = max((stage_of[x] for x in node.inputs if x.op != "constant"), default=HOST)
        # Join the stage just built when it produced one of our inputs: stage order stays a topological order.
        if gemm_view(node) is None and latest != HOST and latest == len(stages) - 1:
            stage = stages[latest]
        else:
            stage = Stage(len(stages))
            stages.append(stage)
        stage.nodes.append(node)
        stage_of[node] = stage.index
    edges: dict[tuple[int, int, str], Edge] = {}
    for stage in stages:
        for node in stage.nodes:
            for x in node.inputs:
                if x.op != "constant" and stage_of[x] != stage.index:
                    key = (stage_of[x], stage.index, x.name)
                    edges.setdefault(key, Edge(stage_of[x], stage.index, x.type.numel, x.name))
    for out in graph.outputs:
        if out.op == "constant":
            continue  # the host holds it already: nothing is computed or sent
        edges.setdefault((stage_of[out], HOST, out.name), Edge(stage_of[out], HOST, out.type.numel, out.name))
    return stages, list(edges.values())
