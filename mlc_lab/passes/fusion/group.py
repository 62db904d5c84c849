"""Outlining: replace a group of nodes by one `fused` node that keeps them as its sub-graph.

Both fusion passes decide *which* nodes belong together; this module does the rewriting, so the
rules for a valid group live in one place:
- members form a connected piece whose only value used outside is the last member's (the group has
  one output, like a kernel that writes one tensor);
- the fused node takes the group's external inputs, in order of first use, and sits where the last
  member was, so definitions still precede uses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from mlc_lab.errors import MlcLabError
from mlc_lab.ir import Graph, GraphBuilder, GraphRewriter, Node
from mlc_lab.ir.ops import is_source


class FusionError(MlcLabError, ValueError):
    pass


def external_inputs(members: Sequence[Node]) -> list[Node]:
    inside = set(members)
    seen: dict[Node, None] = {}
    for node in members:
        for x in node.inputs:
            if x not in inside:
                seen.setdefault(x, None)
    return list(seen)


def make_subgraph(members: Sequence[Node], name: str) -> tuple[Graph, list[Node]]:
    """Copy `members` into a new graph whose inputs stand for the group's external inputs."""
    b = GraphBuilder(name)
    outside = external_inputs(members)
    mapping: dict[Node, Node] = {}
    for k, x in enumerate(outside):  # weights stay outside too: a kernel reads them, it does not own them
        mapping[x] = b.input(f"p{k}", x.type.shape, x.type.dtype)
    for node in members:
        inputs = tuple(mapping[x] for x in node.inputs)
        mapping[node] = b.add_node(Node(node.op, inputs, node.attrs, node.type, node.name))
    return b.build(mapping[members[-1]]), outside


def check_group(graph: Graph, members: Sequence[Node], users: dict[Node, list[Node]]) -> None:
    inside = set(members)
    outputs = set(graph.outputs)
    for node in members[:-1]:
        if node in outputs:
            raise FusionError(f"%{node.name} is a graph output, so it cannot be hidden inside a fused group")
        leaks = [u.name for u in users[node] if u not in inside]
        if leaks:
            raise FusionError(f"%{node.name} is also used by {leaks} outside the group")
    for node in members:
        if is_source(node.op):
            raise FusionError(f"%{node.name} ({node.op}) cannot be fused")


def outline_groups(graph: Graph, groups: Sequence[tuple[Sequence[Node], str]]) -> Graph:
    """Replace each (members in graph order, pattern name) group by one fused node."""
    users = graph.users()
    position = {n: i for i, n in enumerate(graph.nodes)}
    last_of: dict[Node, tuple[list[Node], str]] = {}
    grouped: set[Node] = set()
    for members, pattern in groups:
        members = sorted(members, key=position.__getitem__)
        if grouped & set(members):
            raise FusionError(f"node(s) {[m.name for m in members if m in grouped]} are in two groups")
        check_group(graph, members, users)
        grouped |= set(members)
        last_of[members[-1]] = (members, pattern)

    class _Outliner(GraphRewriter):
        def keep(self, node: Node) -> bool:
            return node not in grouped or node in last_of

        def rewrite(self, node: Node, inputs: tuple[Node, ...]) -> Node:
            if node not in last_of:
                return super().rewrite(node, inputs)
            members, pattern = last_of[node]
            sub, outside = make_subgraph(members, pattern or "fused")
            name = self.fresh_name(re.sub(r"\W+", "_", f"fused_{pattern}" if pattern else "fused"))
            new_inputs = tuple(self.mapping[x] for x in outside)
            fused = Node("fused", new_inputs, {"subgraph": sub, "pattern": pattern}, node.type, name)
            return self.emit(fused)

    return _Outliner(graph).run()
