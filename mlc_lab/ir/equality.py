"""Structural equality of graphs: same names, ops, wiring, types, attributes and constant bits.

What `parse_graph(print(g))` must give back, and what a pass test compares. Where graph inputs sit
among the nodes is not compared (the text form does not keep it), nor the frontend's records of
how outputs nest (`output_structure`, `input_mutations`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlc_lab.ir.graph import Graph


def _arrays_differ(a: np.ndarray, b: np.ndarray) -> str | None:
    if a.dtype != b.dtype or a.shape != b.shape:
        return f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
    if a.dtype.kind in "fc":
        same = np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b))
    else:
        same = np.array_equal(a, b)
    return None if same else "values differ"


def _values_differ(a: Any, b: Any) -> str | None:
    from mlc_lab.ir.graph import Graph

    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{type(a).__name__} vs {type(b).__name__}"
        return _arrays_differ(a, b)
    if isinstance(a, Graph) or isinstance(b, Graph):
        if not (isinstance(a, Graph) and isinstance(b, Graph)):
            return f"{type(a).__name__} vs {type(b).__name__}"
        return graph_diff(a, b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return f"{a!r} vs {b!r}"
        return next((d for d in map(_values_differ, a, b) if d), None)
    if type(a) is not type(b) or a != b:
        return f"{a!r} vs {b!r}"
    return None


def graph_diff(a: Graph, b: Graph) -> str | None:
    """None when `a` and `b` are structurally equal, else the first difference in words."""
    if a.name != b.name:
        return f"graph names {a.name!r} vs {b.name!r}"
    ins_a = [(x.name, x.type) for x in a.inputs]
    ins_b = [(x.name, x.type) for x in b.inputs]
    if ins_a != ins_b:
        return f"graph {a.name!r}: inputs {ins_a} vs {ins_b}"
    nodes_a = [n for n in a.nodes if n.op != "input"]
    nodes_b = [n for n in b.nodes if n.op != "input"]
    if len(nodes_a) != len(nodes_b):
        return f"graph {a.name!r}: {len(nodes_a)} vs {len(nodes_b)} nodes"
    for x, y in zip(nodes_a, nodes_b):
        where = f"graph {a.name!r}, %{x.name}"
        if (x.name, x.op, x.type) != (y.name, y.op, y.type):
            return f"{where}: {x.op} : {x.type} vs %{y.name} = {y.op} : {y.type}"
        if [i.name for i in x.inputs] != [i.name for i in y.inputs]:
            return f"{where}: inputs {[i.name for i in x.inputs]} vs {[i.name for i in y.inputs]}"
        if set(x.attrs) != set(y.attrs):
            return f"{where}: attributes {sorted(x.attrs)} vs {sorted(y.attrs)}"
        for key in x.attrs:
            diff = _values_differ(x.attrs[key], y.attrs[key])
            if diff:
                return f"{where}: attribute {key}: {diff}"
    outs_a, outs_b = [o.name for o in a.outputs], [o.name for o in b.outputs]
    if outs_a != outs_b:
        return f"graph {a.name!r}: outputs {outs_a} vs {outs_b}"
    return None


def graphs_equal(a: Graph, b: Graph) -> bool:
    return graph_diff(a, b) is None
