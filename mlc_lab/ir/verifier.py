"""The verifier: a graph is well formed when every check here passes.

Each failure raises `VerificationError` naming the node and what is wrong with it, so a pass that
breaks a graph is caught at the pass that broke it (the PassManager verifies after every pass).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.memory import shape_problem
from mlc_lab.ir.node import Node
from mlc_lab.ir.ops import OPS, OpError
from mlc_lab.ir.types import TensorType

if TYPE_CHECKING:  # annotations only: graph.py calls this module, so a runtime import back would be a cycle
    from mlc_lab.ir.graph import Graph


class VerificationError(MlcLabError, ValueError):
    def __init__(self, message: str, node: Node | None = None, graph: Graph | None = None) -> None:
        where = f"graph {graph.name!r}" if graph is not None else "graph"
        if node is not None:
            where += f", node %{node.name} ({node.op})"
        super().__init__(f"{where}: {message}")
        self.node = node


def verify(graph: Graph) -> None:
    def fail(message: str, node: Node | None = None) -> VerificationError:
        return VerificationError(message, node, graph)

    if not graph.outputs:
        raise fail("graph has no outputs (an empty graph computes nothing)")
    names: dict[str, Node] = {}
    for node in graph.nodes:
        if not isinstance(node, Node):
            raise fail(f"graph.nodes holds a {type(node).__name__}, not a Node")
        if node.name in names and names[node.name] is not node:
            raise fail(f"name %{node.name} is defined twice", node)
        names[node.name] = node
    position = {node: i for i, node in enumerate(graph.nodes)}
    if len(position) != len(graph.nodes):
        raise fail("a node appears twice in graph.nodes")
    _check_acyclic(graph, position, fail)

    for node in graph.nodes:
        if node.op not in OPS:
            raise fail(f"unknown op {node.op!r}", node)
        for i, x in enumerate(node.inputs):
            if x not in position:
                raise fail(f"input {i} is %{x.name}, which is not defined in this graph (a dangling value)", node)
            if position[x] >= position[node]:
                raise fail(f"input {i} %{x.name} is used before it is defined", node)
        _check_types(node, fail)

    inputs = [n for n in graph.nodes if n.op == "input"]
    if set(inputs) != set(graph.inputs) or len(graph.inputs) != len(set(graph.inputs)):
        missing = [n.name for n in inputs if n not in graph.inputs]
        extra = [n.name for n in graph.inputs if n not in inputs]
        raise fail(f"graph.inputs does not list the input nodes (not listed: {missing}, not inputs: {extra})")
    for i, out in enumerate(graph.outputs):
        if out not in position:
            raise fail(f"output {i} %{out.name} is not defined in this graph")
    _check_symbols(graph, fail)


def _check_symbols(graph: Graph, fail) -> None:
    """Every symbolic dimension is bound by an input (its size comes from the arguments), with one bound per name."""
    bound = {name: dim for x in graph.inputs for name, dim in x.type.symbols.items()}
    for node in graph.nodes:
        for name, dim in node.type.symbols.items():
            if name not in bound:
                raise fail(f"symbolic dimension {dim} appears in no graph input, so no call can give its size", node)
            if bound[name] != dim:
                bounds = f"{dim.upper} here, {bound[name].upper} elsewhere"
                raise fail(f"symbolic dimension {name!r} has bound {bounds}", node)


def _check_acyclic(graph: Graph, position: dict[Node, int], fail) -> None:
    """Depth-first search; a back edge is a cycle, reported as the chain of nodes."""
    state: dict[Node, int] = {}  # 1 = on the stack, 2 = done
    for root in graph.nodes:
        if root in state:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        path: list[Node] = []
        while stack:
            node, k = stack.pop()
            if k == 0:
                state[node] = 1
                path.append(node)
            if k < len(node.inputs):
                stack.append((node, k + 1))
                child = node.inputs[k]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :] + [child]
                    chain = " -> ".join(f"%{n.name}" for n in reversed(cycle))
                    raise fail(f"cycle: {chain}", child)
                if child not in state and child in position:
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()


def _check_types(node: Node, fail) -> None:
    if not isinstance(node.type, TensorType):
        raise fail(f"type is a {type(node.type).__name__}, not a TensorType", node)
    too_big = shape_problem(node.type)
    if too_big:
        raise fail(too_big, node)
    opdef = OPS[node.op]
    if node.op == "input":
        if node.inputs:
            raise fail("an input node cannot have inputs", node)
        return
    try:
        opdef.check_arity(len(node.inputs))
        attrs = opdef.normalize_attrs(node.attrs)
        inferred = opdef.infer([x.type for x in node.inputs], attrs)
    except OpError as e:
        raise fail(str(e), node) from None
    if inferred != node.type:
        raise fail(f"declared type {node.type} but its inputs and attributes give {inferred}", node)
    if node.op == "fused":
        try:
            verify(node.attrs["subgraph"])
        except VerificationError as e:
            raise fail(f"in its sub-graph: {e}", node) from None
