"""Buffer planning: liveness analysis, then reuse of dead buffers for new tensors.

Each computed tensor lives from the op that writes it to the last op that reads it. Two tensors whose
lifetimes do not overlap can share memory. The planner walks the ops in order, frees buffers after
their last use and serves each new tensor from the smallest free buffer that fits (best fit),
growing the arena only when none does. The result is a static memory plan: offsets into one arena.
Fused groups matter here: their intermediates live in registers/caches, not in the plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlc_lab.ir import Graph, Node


@dataclass
class Buffer:
    offset: int
    size: int


@dataclass
class MemoryPlan:
    graph_name: str
    assignment: dict[str, Buffer] = field(default_factory=dict)  # tensor name -> buffer
    arena_bytes: int = 0  # the planned activation memory (with reuse)
    no_reuse_bytes: int = 0  # every intermediate its own buffer
    peak_live_bytes: int = 0  # lower bound: the most bytes alive at one time (inputs/outputs included)
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (def step, last use)

    @property
    def reuse_saving(self) -> float:
        return 1 - self.arena_bytes / self.no_reuse_bytes if self.no_reuse_bytes else 0.0

    def __str__(self) -> str:
        mib = 1 / 2**20
        return (
            f"memory plan for {self.graph_name}: {len(self.assignment)} intermediate tensors\n"
            f"  no reuse       {self.no_reuse_bytes * mib:9.3f} MiB\n"
            f"  planned arena  {self.arena_bytes * mib:9.3f} MiB  ({self.reuse_saving:.0%} saved by reuse)\n"
            f"  peak live      {self.peak_live_bytes * mib:9.3f} MiB  (inputs and outputs included)"
        )


def lifetimes(graph: Graph) -> dict[Node, tuple[int, int]]:
    """(step that writes it, last step that reads it) for each computed tensor; graph outputs live to the end."""
    steps = {node: k for k, node in enumerate(graph.ops)}
    end = len(steps)
    spans: dict[Node, tuple[int, int]] = {}
    for node in graph.nodes:
        if node.op == "constant":
            continue
        start = steps.get(node, -1)  # graph inputs exist before step 0
        spans[node] = (start, start)
    for node, k in steps.items():
        for x in node.inputs:
            if x in spans:
                spans[x] = (spans[x][0], max(spans[x][1], k))
    for out in graph.outputs:
        if out in spans:
            spans[out] = (spans[out][0], end)
    return spans


def plan_memory(graph: Graph, alignment: int = 64) -> MemoryPlan:
    spans = lifetimes(graph)
    plan = MemoryPlan(graph.name)
    plan.lifetimes = {n.name: s for n, s in spans.items()}
    outputs = set(graph.outputs)
    free: list[Buffer] = []
    live: dict[Node, Buffer] = {}

    def aligned(n: int) -> int:
        return -(-n // alignment) * alignment

    for k, node in enumerate(graph.ops):
        # The arena holds intermediates: not graph inputs (the caller's) or outputs (returned to the caller).
        if node not in outputs:
            size = aligned(node.type.nbytes)
            plan.no_reuse_bytes += size
            fitting = [b for b in free if b.size >= size]
            if fitting:
                buf = min(fitting, key=lambda b: b.size)
                free.remove(buf)
            else:
                buf = Buffer(plan.arena_bytes, size)
                plan.arena_bytes += size
            live[node] = buf
            plan.assignment[node.name] = buf
        # tensors whose last reader is this step die now (after this op has read them)
        for dead in [n for n in live if spans[n][1] <= k and n is not node]:
            free.append(live.pop(dead))
        alive = sum(n.type.nbytes for n, (s, e) in spans.items() if s <= k <= e)
        plan.peak_live_bytes = max(plan.peak_live_bytes, alive)
    return plan
