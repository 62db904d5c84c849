"""The text form: one op per line, SSA style, attributes that differ from their defaults in braces.

graph mlp(%x: f32[1, 784]) -> (f32[1, 10]) {
  %fc1_weight = constant : f32[256, 784]
  %linear = dense(%x, %fc1_weight) : f32[1, 256]
  ...
  return %linear_2
}

`mlc_lab.ir.parser` reads it back. What it needs to, the text keeps:
- a constant of at most SMALL_CONSTANT elements prints its values inline, each as the shortest
  decimal that reads back to the same bits; a larger one prints only its type, and the parser takes
  its array from a payload by name (`constant_payloads(graph)` collects them);
- names that are not plain identifiers (letters, digits, `_ . $ -`) print quoted: `%"a/b:0"`;
- a fused node prints its sub-graph's parameters as `// %p0 = %x, ...`, plus `// graph NAME` when
  the sub-graph is not named after the pattern (fusion passes name it so).
Not printed: where graph inputs sit among the nodes, and the frontend's `output_structure` and
`input_mutations` records.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.ir.ops import OPS

if TYPE_CHECKING:  # annotations only: graph.py calls this module, so a runtime import back would be a cycle
    from mlc_lab.ir.graph import Graph, Node

SMALL_CONSTANT = 8  # constants with at most this many elements print their values


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.$\-]+")


def format_name(name: str) -> str:
    """A node or graph name as printed: bare when plain, JSON-quoted otherwise."""
    return name if _PLAIN_NAME.fullmatch(name) else json.dumps(name, ensure_ascii=False)


def format_value(value: np.ndarray) -> str:
    """A constant's values, lossless (the shortest repr per element), whatever numpy's print options."""
    with np.printoptions(nanstr="nan", infstr="inf"):
        text = np.array2string(
            value, separator=", ", floatmode="unique", suppress_small=False, sign="-", threshold=max(1000, value.size)
        )
    return text.replace("\n", "")


def default_subgraph_name(pattern: str) -> str:
    """The name fusion passes give a fused node's sub-graph."""
    return pattern or "fused"


def constant_payloads(graph: Graph) -> dict[str, np.ndarray]:
    """The arrays of the constants the text form does not show (more than SMALL_CONSTANT elements),
    by name, sub-graphs included: what `parse_graph` needs besides the text."""
    payloads: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        if node.op == "constant" and node.attrs["value"].size > SMALL_CONSTANT:
            if node.name in payloads and payloads[node.name] is not node.attrs["value"]:
                raise ValueError(f"two large constants are named %{node.name}; their payloads would clash")
            payloads[node.name] = node.attrs["value"]
        elif node.op == "fused":
            for name, value in constant_payloads(node.attrs["subgraph"]).items():
                if name in payloads and payloads[name] is not value:
                    raise ValueError(f"two large constants are named %{name}; their payloads would clash")
                payloads[name] = value
    return payloads


def format_attr(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
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
            shown = " " + format_value(value)
        return f"{indent}%{format_name(node.name)} = constant{shown} : {node.type}"
    defaults = OPS[node.op].attrs if node.op in OPS else {}
    attrs = {k: v for k, v in node.attrs.items() if k != "subgraph" and (k not in defaults or v != defaults[k])}
    args = ", ".join(f"%{format_name(x.name)}" for x in node.inputs)
    text = f"{indent}%{format_name(node.name)} = {node.op}({args})"
    if attrs:
        text += " {" + ", ".join(f"{k}={format_attr(v)}" for k, v in attrs.items()) + "}"
    text += f" : {node.type}"
    if node.op == "fused":
        sub = node.attrs["subgraph"]
        params = ", ".join(f"%{format_name(p.name)} = %{format_name(x.name)}" for p, x in zip(sub.inputs, node.inputs))
        body = [f"{indent}    // {params}"]
        if sub.name != default_subgraph_name(node.attrs.get("pattern", "")):
            body.append(f"{indent}    // graph {format_name(sub.name)}")
        body += _body(sub, indent + "    ")
        text += " {\n" + "\n".join(body) + f"\n{indent}}}"
    return text


def _body(graph: Graph, indent: str) -> list[str]:
    lines = [format_node(n, indent) for n in graph.nodes if n.op != "input"]
    return lines + [f"{indent}return " + ", ".join(f"%{format_name(o.name)}" for o in graph.outputs)]


def format_graph(graph: Graph, indent: str = "") -> str:
    params = ", ".join(f"%{format_name(x.name)}: {x.type}" for x in graph.inputs)
    results = ", ".join(str(o.type) for o in graph.outputs)
    lines = [f"{indent}graph {format_name(graph.name)}({params}) -> ({results}) {{"]
    lines += _body(graph, indent + "  ")
    lines.append(f"{indent}}}")
    return "\n".join(lines)
