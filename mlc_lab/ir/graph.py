"""The graph IR: single-output nodes in a list, referring to each other by object.

A Node is one operation and the one tensor it produces (SSA: a value is defined once).
Graph inputs are nodes with op "input"; weights are nodes with op "constant" that hold their array.
A Graph is an ordered list of nodes (definitions before uses) plus the list of output nodes.
Passes never edit a graph in place: they build a new one (see `GraphRewriter`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.ir.node import Node
from mlc_lab.ir.ops.registry import is_source

if TYPE_CHECKING:
    import matplotlib.figure


def reachable(roots: Iterable[Node]) -> set[Node]:
    """`roots` and every node they depend on (walking inputs backwards)."""
    seen: set[Node] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(node.inputs)
    return seen


class Graph:
    """A dataflow graph: `nodes` in definition order, `inputs` and `outputs` among them."""

    #: How the model arranged its results (a dict, namedtuple, nested tuples), recorded by the frontend;
    #: None: a flat list. Covers the outputs that are not `input_mutations`.
    output_structure: Any = None
    #: Graph output index -> graph input index, for outputs that carry the new value of an input the
    #: model mutated in place (`x.add_(1)`): the compiled callable writes them back, as PyTorch would.
    input_mutations: Mapping[int, int] = MappingProxyType({})

    def __init__(
        self,
        nodes: Iterable[Node],
        inputs: Sequence[Node],
        outputs: Sequence[Node],
        name: str = "main",
    ) -> None:
        self.nodes = list(nodes)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.name = name

    # -- queries -------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"graph {self.name!r} has no node %{name}")

    def users(self) -> dict[Node, list[Node]]:
        """Who reads each node (graph outputs are not counted as users)."""
        users: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                users.setdefault(i, []).append(n)
        return users

    @property
    def constants(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "constant"]

    @property
    def ops(self) -> list[Node]:
        """The nodes that compute something (not inputs or constants)."""
        return [n for n in self.nodes if not is_source(n.op)]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.ops:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    @property
    def num_params(self) -> int:
        return sum(n.type.numel for n in self.constants)

    # -- checking, printing, drawing, running ----------------------------------------------------
    def verify(self) -> Graph:
        """Raise `VerificationError` naming the first bad node; return self so calls chain."""
        from mlc_lab.ir.verifier import verify

        verify(self)
        return self

    def __str__(self) -> str:
        from mlc_lab.ir.printer import format_graph

        return format_graph(self)

    def __repr__(self) -> str:
        return f"<Graph {self.name!r}: {len(self.inputs)} inputs, {len(self.ops)} ops, {len(self.outputs)} outputs>"

    def draw(self, **kwargs: Any) -> matplotlib.figure.Figure:
        """A matplotlib picture of the graph: a thin shortcut for `mlc_lab.viz.graph.draw_graph(self, **kwargs)`.

        The drawing lives in `viz` (presentation), which reads the graph as data; the IR never imports it
        except here, when a picture is asked for. This one upward import is declared in pyproject.toml's
        import-linter contracts (`ignore_imports`), and `viz.graph` imports nothing that imports this module.
        """
        from mlc_lab.viz.graph import draw_graph

        return draw_graph(self, **kwargs)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run the reference interpreter."""
        from mlc_lab.ir.interpreter import interpret

        return interpret(self, *inputs)

    def copy(self) -> Graph:
        """A new graph with new nodes (constant arrays and subgraphs are shared: both are immutable)."""
        return GraphRewriter(self).run()


class GraphRewriter:
    """Rebuild a graph node by node; override `rewrite` to replace nodes.

    `rewrite(node, inputs)` receives a node of the old graph and its inputs already mapped into the
    new graph, and returns the node that stands for it in the new graph (default: a copy).
    New nodes made along the way go through `emit` so they land in order.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.mapping: dict[Node, Node] = {}
        self.new_nodes: list[Node] = []
        self._names: set[str] = set()

    def emit(self, node: Node) -> Node:
        if node.name in self._names:
            node.name = self.fresh_name(node.name)
        self._names.add(node.name)
        self.new_nodes.append(node)
        return node

    def fresh_name(self, base: str) -> str:
        name, k = base, 1
        while name in self._names or name in self._old_names:
            name, k = f"{base}_{k}", k + 1
        return name

    def rewrite(self, node: Node, inputs: tuple[Node | None, ...]) -> Node | None:
        """Return the node standing for `node` in the new graph, or None to drop it.

        `inputs` are `node.inputs` mapped into the new graph (None where an input was dropped).
        """
        for old, new in zip(node.inputs, inputs):
            if new is None:
                raise ValueError(f"rewriting %{node.name}: its input %{old.name} was dropped or never defined")
        return self.emit(Node(node.op, inputs, node.attrs, node.type, node.name))

    def keep(self, node: Node) -> bool:
        """False drops `node` before its inputs are looked at (dead code may read dead code)."""
        return True

    def run(self) -> Graph:
        self._old_names = {n.name for n in self.graph.nodes}
        for node in self.graph.nodes:
            if not self.keep(node):
                continue
            new = self.rewrite(node, tuple(self.mapping.get(i) for i in node.inputs))
            if new is not None:
                self.mapping[node] = new
        inputs = [self.mapping[i] for i in self.graph.inputs]
        outputs = [self.mapping[o] for o in self.graph.outputs]
        graph = Graph(self.new_nodes, inputs, outputs, self.graph.name)
        graph.output_structure, graph.input_mutations = self.graph.output_structure, self.graph.input_mutations
        return graph
