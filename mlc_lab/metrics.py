"""Numbers that make a pass's effect visible, computed from the IR alone.

- kernels: top-level ops, each one kernel launch (a fused group is one);
- intermediate traffic: bytes written to memory by one kernel and read back by another, the traffic
  fusion removes (a fused group's internal values never reach memory);
- FLOPs: each op's cost rule in the registry (multiply-adds count 2, elementwise ops 1 per element);
- memory plan: see `mlc_lab.passes.memory.buffer_planner`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlc_lab.ir import Graph, Node, node_cost


def node_flops(node: Node) -> int:
    """The node's FLOPs, from its op's cost rule in the registry (`mlc_lab.ir.ops`)."""
    return node_cost(node).flops


@dataclass
class GraphMetrics:
    name: str
    kernels: int
    intermediate_bytes_written: int
    intermediate_bytes_read: int
    weight_bytes: int
    flops: int
    planned_memory_bytes: int
    peak_live_bytes: int

    @property
    def intermediate_traffic_bytes(self) -> int:
        return self.intermediate_bytes_written + self.intermediate_bytes_read

    def as_dict(self) -> dict[str, int]:
        return {
            "kernels": self.kernels,
            "intermediate_traffic_bytes": self.intermediate_traffic_bytes,
            "intermediate_bytes_written": self.intermediate_bytes_written,
            "intermediate_bytes_read": self.intermediate_bytes_read,
            "weight_bytes": self.weight_bytes,
            "flops": self.flops,
            "planned_memory_bytes": self.planned_memory_bytes,
            "peak_live_bytes": self.peak_live_bytes,
        }


def graph_metrics(graph: Graph) -> GraphMetrics:
    from mlc_lab.passes.memory.buffer_planner import plan_memory

    users = graph.users()
    outputs = set(graph.outputs)
    written = read = 0
    for node in graph.ops:
        if node in outputs:
            continue
        written += node.type.nbytes
        read += node.type.nbytes * len(users[node])
    plan = plan_memory(graph)
    return GraphMetrics(
        name=graph.name,
        kernels=len(graph.ops),
        intermediate_bytes_written=written,
        intermediate_bytes_read=read,
        weight_bytes=sum(n.type.nbytes for n in graph.constants),
        flops=sum(node_flops(n) for n in graph.ops),
        planned_memory_bytes=plan.arena_bytes,
        peak_live_bytes=plan.peak_live_bytes,
    )


def compare(before: Graph, after: Graph, labels: tuple[str, str] = ("before", "after")) -> str:
    """A before/after table with ratios, for the chapters and benchmarks."""
    a, b = graph_metrics(before).as_dict(), graph_metrics(after).as_dict()
    rows = [f"{'metric':<28}{labels[0]:>14}{labels[1]:>14}{'after/before':>14}"]
    for key in a:
        ratio = b[key] / a[key] if a[key] else np.nan
        rows.append(f"{key:<28}{a[key]:>14,}{b[key]:>14,}{ratio:>14.2f}")
    return "\n".join(rows)
