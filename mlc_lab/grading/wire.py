"""Values crossing between the grader and the student's process, as JSON only.

The student's process is untrusted: anything it sends back must be data that cannot run code when
read (never pickle). Supported: None, bool, int, float (NaN/Inf too), str, list, tuple, dict,
numeric/bool numpy arrays and scalars, IR TensorTypes and Graphs, fusion Patterns.
Anything else is refused with a `WireError` naming its type.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError

#: numpy kinds an array may have on the wire (no object or void arrays: they could hold anything).
ARRAY_KINDS = frozenset("biuf")
#: Nesting depth and size a decoded message may have: the student's process can send anything.
MAX_DEPTH = 64


class WireError(MlcLabError, ValueError):
    """A value that cannot cross the process boundary (or a malformed message)."""


def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-ready form of `value`."""
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and not isinstance(value, np.generic):
        return value
    if isinstance(value, np.generic):
        return encode(value.item(), depth)
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, frozenset | set):
        return {"__set__": sorted((encode(v, depth + 1) for v in value), key=repr)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in ARRAY_KINDS:
            raise WireError(f"arrays of dtype {value.dtype} cannot be sent")
        data = value.copy(order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        return {"__nd__": base64.b64encode(data.tobytes()).decode(), "dtype": data.dtype.str, "shape": list(data.shape)}
    from mlc_lab.ir import Graph, TensorType

    if isinstance(value, TensorType):
        return {"__type__": [list(value.shape), value.dtype]}
    if isinstance(value, Graph):
        return {"__graph__": _encode_graph(value, depth)}
    from mlc_lab.passes.fusion import Pattern

    if isinstance(value, Pattern):
        return {"__pattern__": [value.name, [[sorted(s.ops), bool(s.optional)] for s in value.steps]]}
    raise WireError(f"a {type(value).__module__}.{type(value).__qualname__} cannot be sent to the grader")


def _encode_graph(graph: Any, depth: int) -> dict[str, Any]:
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    nodes = []
    for n in graph.nodes:
        missing = [i.name for i in n.inputs if id(i) not in index]
        if missing:
            raise WireError(f"node %{n.name} reads %{missing[0]}, which is not in the graph's node list")
        attrs = {k: encode(v, depth + 1) for k, v in n.attrs.items()}
        nodes.append([n.name, n.op, [index[id(i)] for i in n.inputs], attrs, list(n.type.shape), n.type.dtype])
    for n in [*graph.inputs, *graph.outputs]:
        if id(n) not in index:
            raise WireError(f"graph input/output %{n.name} is not in the graph's node list")
    return {
        "name": graph.name,
        "nodes": nodes,
        "inputs": [index[id(n)] for n in graph.inputs],
        "outputs": [index[id(n)] for n in graph.outputs],
    }


def decode(data: Any, depth: int = 0) -> Any:
    """The value `encode` described; builds plain objects only (no code of the sender runs)."""
    if depth > MAX_DEPTH:
        raise WireError("message nested too deeply")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) == 0:
        raise WireError(f"malformed value on the wire: {str(data)[:80]}")
    if "__tuple__" in data:
        return tuple(decode(v, depth + 1) for v in _list(data["__tuple__"]))
    if "__dict__" in data:
        out = {}
        for pair in _list(data["__dict__"]):
            key, value = _list(pair)
            key = decode(key, depth + 1)
            try:
                out[key] = decode(value, depth + 1)
            except TypeError:
                raise WireError("unhashable dictionary key on the wire") from None
        return out
    if "__set__" in data:
        return frozenset(decode(v, depth + 1) for v in _list(data["__set__"]))
    if "__nd__" in data:
        dtype = np.dtype(str(data["dtype"]))
        if dtype.kind not in ARRAY_KINDS:
            raise WireError(f"arrays of dtype {dtype} cannot be received")
        shape = tuple(int(s) for s in _list(data["shape"]))
        raw = base64.b64decode(str(data["__nd__"]))
        try:
            return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        except ValueError as e:
            raise WireError(f"malformed array on the wire: {e}") from None
    from mlc_lab.ir import TensorType

    if "__type__" in data:
        shape, dtype = _list(data["__type__"])
        return TensorType(tuple(int(s) for s in _list(shape)), str(dtype))
    if "__graph__" in data:
        return _decode_graph(data["__graph__"], depth)
    if "__pattern__" in data:
        from mlc_lab.passes.fusion.patterns import Pattern, Step

        name, steps = _list(data["__pattern__"])
        return Pattern(str(name), tuple(Step(frozenset(str(o) for o in ops), bool(opt)) for ops, opt in steps))
    raise WireError(f"unknown value kind on the wire: {sorted(data)[:3]}")


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise WireError(f"malformed message: expected a list, got {type(value).__name__}")
    return value


def _decode_graph(data: Any, depth: int) -> Any:
    from mlc_lab.ir import Graph, Node, TensorType

    if not isinstance(data, dict):
        raise WireError("malformed graph on the wire")
    nodes: list[Node] = []
    for entry in _list(data.get("nodes")):
        name, op, inputs, attrs, shape, dtype = _list(entry)
        ins = []
        for i in _list(inputs):
            if not isinstance(i, int) or not 0 <= i < len(nodes):
                raise WireError(f"node %{name} reads a node defined after it (or not at all)")
            ins.append(nodes[i])
        if not isinstance(attrs, dict):
            raise WireError(f"node %{name}: malformed attributes")
        decoded = {str(k): decode(v, depth + 1) for k, v in attrs.items()}
        nodes.append(
            Node(str(op), ins, decoded, TensorType(tuple(int(s) for s in _list(shape)), str(dtype)), str(name))
        )

    def pick(key: str) -> list[Node]:
        picked = []
        for i in _list(data.get(key)):
            if not isinstance(i, int) or not 0 <= i < len(nodes):
                raise WireError(f"graph {key} index {i!r} out of range")
            picked.append(nodes[i])
        return picked

    return Graph(nodes, pick("inputs"), pick("outputs"), str(data.get("name", "main")))


def dumps(value: Any) -> bytes:
    return json.dumps(encode(value), allow_nan=True).encode()


def loads(raw: bytes) -> Any:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise WireError(f"malformed message: {e}") from None
    return decode(data)
