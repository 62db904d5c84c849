"""Decompose: replace composite ops by the simpler ops of their registered decomposition.

Composite ops (softmax, layer_norm, a new `mish`) stay graph nodes through fusion and the chapters;
a backend without a native kernel for one runs this pass first, so every backend runs every op with
a decomposition and no code of its own:

    Decompose().apply(g)                               # every op with a decomposition
    Decompose(keep={"softmax"}).apply(g)               # ... but softmax stays a node
    Decompose(native=lambda op: op in MY_KERNELS)      # what a backend lowers itself stays

Decompositions may produce composite ops again; the pass repeats until none is left to decompose,
inside fused groups too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from mlc_lab.ir import Graph, GraphBuilder, GraphRewriter, Node, TensorType, get_op
from mlc_lab.passes.base import Pass, PassError

#: Rounds of decomposition before the pass calls a decomposition that keeps producing ops to decompose
#: circular (mish -> softplus -> mish).
MAX_ROUNDS = 16


class DecompositionError(PassError):
    """A decomposition is missing, builds the wrong type, or never ends; the message names the op."""


def decomposition_graph(op: str, input_types: Sequence[TensorType], attrs: dict[str, Any], name: str = "") -> Graph:
    """The sub-graph `op`'s decomposition builds for inputs of `input_types` (named %x0, %x1, ...)."""
    opdef = get_op(op)
    if opdef.decompose is None:
        raise DecompositionError(f"{op}: has no decomposition (register it with decompose=...)")
    b = GraphBuilder(name or f"{op}_decomposed")
    inputs = [b.input(f"x{i}", t.shape, t.dtype) for i, t in enumerate(input_types)]
    out = opdef.decompose(b, *inputs, **attrs)
    expected = opdef.infer(list(input_types), attrs)
    if not isinstance(out, Node) or out.type != expected:
        got = out.type if isinstance(out, Node) else type(out).__name__
        raise DecompositionError(f"{op}: its decomposition gives {got}, the op's type is {expected}")
    return b.build(out)


def decompose_node(node: Node) -> Graph:
    """`node`'s decomposition as a sub-graph whose inputs stand for `node.inputs`."""
    try:
        return decomposition_graph(node.op, [x.type for x in node.inputs], dict(node.attrs), node.name)
    except DecompositionError as e:
        raise DecompositionError(f"node %{node.name}: {e}") from None


def has_own_compute(op: str) -> bool:
    """Whether the op's reference compute is its own, not the run of its decomposition."""
    return not getattr(get_op(op).compute, "from_decomposition", False)


@dataclass
class Decompose(Pass):
    """Inline the decomposition of every op that has one, unless it is kept or lowered natively.

    `keep`: ops that stay nodes; `only`: if given, the only ops decomposed; `native(op)`: True for
    ops the target backend lowers itself (they stay too).
    """

    keep: Collection[str] = frozenset()
    only: Collection[str] | None = None
    native: Callable[[str], bool] | None = None

    def wants(self, op: str) -> bool:
        if op == "fused" or get_op(op).decompose is None or op in self.keep:
            return False
        if self.only is not None and op not in self.only:
            return False
        return not (self.native is not None and self.native(op))

    def _pending(self, graph: Graph) -> bool:
        return any(self.wants(n.op) or (n.op == "fused" and self._pending(n.subgraph)) for n in graph.nodes)

    def run(self, graph: Graph) -> Graph:
        for _ in range(MAX_ROUNDS):
            if not self._pending(graph):
                return graph
            graph = _Inline(graph, self).run()
        left = sorted({n.op for n in graph.nodes if self.wants(n.op)})
        raise DecompositionError(
            f"decomposing {', '.join(left)} did not end after {MAX_ROUNDS} rounds: a decomposition produces its own op"
        )


class _Inline(GraphRewriter):
    """One round: every wanted node becomes the nodes of its decomposition; fused groups are decomposed inside."""

    def __init__(self, graph: Graph, decompose: Decompose) -> None:
        super().__init__(graph)
        self.decompose = decompose

    def rewrite(self, node: Node, inputs: tuple[Node | None, ...]) -> Node | None:
        if node.op == "fused" and self.decompose._pending(node.subgraph):
            attrs = {**node.attrs, "subgraph": self.decompose.run(node.subgraph)}
            return self.emit(Node(node.op, inputs, attrs, node.type, node.name))
        if not self.decompose.wants(node.op):
            return super().rewrite(node, inputs)
        sub = decompose_node(node)
        mapping: dict[Node, Node] = dict(zip(sub.inputs, inputs))
        for s in sub.nodes:
            if s.op == "input":
                continue
            name = node.name if s is sub.outputs[0] else f"{node.name}_{s.name}"
            mapping[s] = self.emit(Node(s.op, [mapping[x] for x in s.inputs], s.attrs, s.type, name))
        return mapping[sub.outputs[0]]
