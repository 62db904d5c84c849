"""The text form: one op per line, SSA style, attributes that differ from their defaults in braces.

graph mlp(%x: f32[1, 784]) -> (f32[1, 10]) {
  %fc1_weight = constant : f32[256, 784]
  %linear = dense(%x, %fc1_weight) : f32[1, 256]
  ...
  return %linear_2
}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.ir.ops import OPS

if TYPE_CHECKING:  # annotations only: graph.py calls this module, so a runtime import back would be a cycle
    from mlc_lab.ir.graph import Graph, Node

SMALL_CONSTANT = 8  # constants with at most this many elements print their values


def format_attr(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(format_attr(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if value is None:
        return "none"
    return str(value)


def format_node(node: Node, indent: str = "  ") -> str:
    if node.op == "constant":
        value = node.attrs["value"]
        shown = ""
        if value.size <= SMALL_CONSTANT:
            shown = " " + np.array2string(value, separator=", ", precision=6).replace("\n", "")
        return f"{indent}%{node.name} = constant{shown} : {node.type}"
    defaults = OPS[node.op].attrs if node.op in OPS else {}
    attrs = {k: v for k, v in node.attrs.items() if k != "subgraph" and (k not in defaults or v != defaults[k])}
    args = ", ".join(f"%{x.name}" for x in node.inputs)
    text = f"{indent}%{node.name} = {node.op}({args})"
    if attrs:
        text += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in attrs.items()) + "}"
    text += f" : {node.type}"
    if node.op == "fused":
        sub = node.attrs["subgraph"]
        params = ", ".join(f"%{p.name} = %{x.name}" for p, x in zip(sub.inputs, node.inputs))
        body = [f"{indent}    // {params}"] + _body(sub, indent + "    ")
        text += " {\n" + "\n".join(body) + f"\n{indent}}}"
    return text


def _body(graph: Graph, indent: str) -> list[str]:
    lines = [format_node(n, indent) for n in graph.nodes if n.op != "input"]
    return lines + [f"{indent}return " + ", ".join(f"%{o.name}" for o in graph.outputs)]


def format_graph(graph: Graph, indent: str = "") -> str:
    params = ", ".join(f"%{x.name}: {x.type}" for x in graph.inputs)
    results = ", ".join(str(o.type) for o in graph.outputs)
    lines = [f"{indent}graph {graph.name}({params}) -> ({results}) {{"]
    lines += _body(graph, indent + "  ")
    lines.append(f"{indent}}}")
    return "\n".join(lines)
