"""The text form: one op per line, SSA style, attributes that differ from their defaults in braces.

graph mlp(%x: f32[1, 784]) -> (f32[1, 10]) {
  %fc1_weight = constant : f32[256, 784]
  %linear = dense(%x, %fc1_weight) : f32[1, 256]
  ...
  return %linear_2
}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import OPS

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
        text += " " + format_graph(node.attrs["subgraph"], indent + "  ", header="")
    return text


def format_graph(graph: Graph, indent: str = "", header: str = "graph") -> str:
    params = ", ".join(f"%{x.name}: {x.type}" for x in graph.inputs)
    results = ", ".join(str(o.type) for o in graph.outputs)
    head = f"{header} {graph.name}" if header else ""
    lines = [f"{indent[:-2] if not header else indent}{head}({params}) -> ({results}) {{".lstrip()]
    if not header:
        lines[0] = f"{graph.name}({params}) -> ({results}) {{"
    body = indent + "  "
    lines += [format_node(n, body) for n in graph.nodes if n.op != "input"]
    lines.append(f"{body}return " + ", ".join(f"%{o.name}" for o in graph.outputs))
    lines.append(f"{indent}}}")
    return "\n".join(lines)
