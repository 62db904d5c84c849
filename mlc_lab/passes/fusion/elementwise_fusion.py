"""Greedy elementwise fusion, with the rules TVM's FuseOps uses (simplified):

- an elementwise/broadcast op joins the group of its producer when that producer has exactly one
  user and is not a graph output (fusing a shared value would compute it twice);
- a heavy op (conv2d, matmul) starts a group that may absorb elementwise/broadcast consumers only;
- a group of elementwise/injective ops may also absorb injective ops and end with one reduction;
- a reduction ends its group: nothing fuses after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlc_lab.ir import Graph, Node, OpKind, get_op
from mlc_lab.ir.ops import is_source
from mlc_lab.passes.base import Pass
from mlc_lab.passes.fusion.group import outline_groups

_CHEAP = (OpKind.ELEMWISE, OpKind.BROADCAST)


def _kind(node: Node) -> OpKind:
    return get_op(node.op).kind


def _can_join(group_root: OpKind, closed: bool, consumer: OpKind) -> bool:
    if closed:
        return False
    if group_root == OpKind.OUT_FUSABLE:
        return consumer in _CHEAP
    if group_root in (*_CHEAP, OpKind.INJECTIVE):
        return consumer in (*_CHEAP, OpKind.INJECTIVE, OpKind.REDUCTION)
    return False


@dataclass(frozen=True)
class ElementwiseFusionPass(Pass):
    """max_group_size: the most ops one fused group may hold."""

    max_group_size: int = 64

    def __post_init__(self) -> None:
        m = self.max_group_size
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise ValueError(f"ElementwiseFusionPass: max_group_size must be a positive int, got {m!r}")

    def run(self, graph: Graph) -> Graph:
        users = graph.users()
        outputs = set(graph.outputs)
        group_of: dict[Node, list[Node]] = {}
        root_kind: dict[int, OpKind] = {}
        closed: set[int] = set()
        for node in graph.nodes:
            if is_source(node.op) or node.op == "fused":
                continue
            kind = _kind(node)
            joined = False
            for producer in node.inputs:
                group = group_of.get(producer)
                if group is None or group[-1] is not producer:
                    continue  # only extend a group at its tail: the group keeps one output
                if len(users[producer]) != 1 or producer in outputs or len(group) >= self.max_group_size:
                    continue
                if _can_join(root_kind[id(group)], id(group) in closed, kind):
                    group.append(node)
                    group_of[node] = group
                    if kind == OpKind.REDUCTION:
                        closed.add(id(group))
                    joined = True
                    break
            if not joined:
                group = [node]
                group_of[node] = group
                root_kind[id(group)] = kind
                if kind in (OpKind.REDUCTION, OpKind.OPAQUE):
                    closed.add(id(group))
        unique = {id(g): g for g in group_of.values()}
        groups = [(g, "+".join(n.op for n in g)) for g in unique.values() if len(g) > 1]
        return outline_groups(graph, groups)
