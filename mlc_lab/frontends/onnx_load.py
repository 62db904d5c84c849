"""Read an ONNX model and check it before any op is converted.

A file can be missing, empty, truncated or not ONNX at all; a well-formed protobuf can still describe
a broken graph (a node reading a name nothing defines, a cycle, an output nothing produces, a name
produced twice) or an input whose shape is unknown. Each case is a `FrontendError` naming the model
and what is wrong, not a protobuf `DecodeError` or a `KeyError` halfway through conversion.

`load_checked` returns the model with `input_shapes` applied and ONNX's shape inference run, its
default-domain opset, and its nodes in an order where every value is defined before it is read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import onnx
from google.protobuf.message import DecodeError
from onnx import shape_inference

from mlc_lab.frontends.errors import FrontendError

__all__ = ["CheckedModel", "describe_node", "load_checked"]

#: Names ONNX gives its default operator domain.
DEFAULT_DOMAINS = ("", "ai.onnx")


@dataclass
class CheckedModel:
    """An ONNX model that passed `load_checked`: safe to walk node by node."""

    proto: onnx.ModelProto  #: input_shapes applied, shape inference run
    where: str  #: "ONNX file 'm.onnx'" or "ONNX model 'name'": the start of every error message
    opset: int  #: the default domain's opset version
    nodes: list[onnx.NodeProto]  #: topologically sorted
    inputs: list[onnx.ValueInfoProto]  #: the graph inputs that are not initializers, with static shapes


def describe_node(node: onnx.NodeProto) -> str:
    output = node.output[0] if node.output else "<none>"
    return f"ONNX {node.op_type} (node {node.name or '<unnamed>'!r}, output {output!r})"


def load_checked(
    model: str | os.PathLike | onnx.ModelProto,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    check_ops: Callable[[list[onnx.NodeProto], int, str], None] | None = None,
) -> CheckedModel:
    """Read `model` (a path or a ModelProto), fix `input_shapes`, check it, run shape inference.

    check_ops(nodes, opset, where) runs once the graph is known to be well formed and before input shapes
    are checked: a model with an op the importer lacks is named for that op first (a dynamic shape is
    no use to fix there).
    """
    proto, where = _read(model)
    opset = _check_header(proto, where)
    nodes = _sorted_nodes(proto.graph, where)
    if check_ops is not None:
        check_ops(nodes, opset, where)
    inputs = _fix_input_shapes(proto.graph, where, dict(input_shapes or {}))
    try:
        proto = shape_inference.infer_shapes(proto)
    except Exception as e:  # noqa: BLE001 - onnx raises InferenceError, ValidationError, RuntimeError...
        raise FrontendError(f"{where}: ONNX shape inference failed: {type(e).__name__}: {_first_line(e)}") from None
    return CheckedModel(proto, where, opset, nodes, inputs)


# == reading =======================================================================================
def _read(model: str | os.PathLike | onnx.ModelProto) -> tuple[onnx.ModelProto, str]:
    if isinstance(model, onnx.ModelProto):
        proto = onnx.ModelProto()
        proto.CopyFrom(model)  # input_shapes are written into the graph: never into the caller's model
        return proto, f"ONNX model {proto.graph.name or '<unnamed>'!r}"
    path = os.fspath(model)
    where = f"ONNX file {path!r}"
    if not os.path.exists(path):
        raise FrontendError(f"{where} does not exist")
    if not os.path.isfile(path):
        raise FrontendError(f"{where} is not a file")
    if os.path.getsize(path) == 0:
        raise FrontendError(f"{where} is empty (0 bytes)")
    try:
        proto = onnx.load(path)
    except DecodeError as e:
        raise FrontendError(
            f"{where} is not a valid ONNX model: protobuf cannot parse it ({e}); is the file truncated or not ONNX?"
        ) from None
    except Exception as e:  # noqa: BLE001 - external data: OSError, ValueError, onnx's ValidationError
        raise FrontendError(f"{where} cannot be loaded: {type(e).__name__}: {_first_line(e)}") from None
    return proto, where


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _check_header(proto: onnx.ModelProto, where: str) -> int:
    """The model has a graph with outputs and names an opset of the default domain we know."""
    if not proto.HasField("graph"):
        raise FrontendError(f"{where} holds no graph: not an ONNX model, or an empty one")
    if not proto.graph.output:
        raise FrontendError(f"{where}: the graph declares no outputs")
    versions = [o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS]
    if not versions:
        raise FrontendError(f"{where} imports no opset of the default ONNX domain (opset_import is empty)")
    opset, newest = versions[0], onnx.defs.onnx_opset_version()
    if not 1 <= opset <= newest:
        raise FrontendError(f"{where} uses opset {opset}; the installed onnx package knows opsets 1 to {newest}")
    return opset


# == graph structure ===============================================================================
def _sorted_nodes(graph: onnx.GraphProto, where: str) -> list[onnx.NodeProto]:
    """The nodes in an order where each value is defined before use; names every structural error."""
    defined: dict[str, str] = {}
    for init in graph.initializer:
        if init.name in defined:
            raise FrontendError(f"{where}: two initializers are named {init.name!r}")
        defined[init.name] = "an initializer"
    seen_inputs: set[str] = set()
    for value in graph.input:
        if value.name in seen_inputs:
            raise FrontendError(f"{where}: two graph inputs are named {value.name!r}")
        seen_inputs.add(value.name)
        defined.setdefault(value.name, "a graph input")
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for out in filter(None, node.output):
            if out in defined or out in producer:
                first = defined.get(out) or describe_node(producer[out])
                raise FrontendError(
                    f"{where}: value {out!r} is produced twice: by {first} and by {describe_node(node)}"
                )
            producer[out] = node
    for node in graph.node:
        for name in filter(None, node.input):
            if name not in defined and name not in producer:
                raise FrontendError(
                    f"{where}: {describe_node(node)} reads {name!r}, which no node, initializer or graph input defines"
                )
    order = _topological(graph.node, producer, where)
    seen_outputs: set[str] = set()
    for value in graph.output:
        if value.name in seen_outputs:
            raise FrontendError(f"{where}: graph output {value.name!r} is listed twice")
        seen_outputs.add(value.name)
        if value.name not in defined and value.name not in producer:
            raise FrontendError(f"{where}: graph output {value.name!r} is never produced by any node")
    return order


def _topological(
    nodes: Sequence[onnx.NodeProto], producer: dict[str, onnx.NodeProto], where: str
) -> list[onnx.NodeProto]:
    """Kahn's algorithm, keeping the file's order among ready nodes; a cycle is an error naming its nodes."""
    index = {id(n): i for i, n in enumerate(nodes)}
    waiting = {i: {index[id(producer[x])] for x in n.input if x in producer} for i, n in enumerate(nodes)}
    users: dict[int, list[int]] = {i: [] for i in waiting}
    for i, deps in waiting.items():
        for d in deps:
            users[d].append(i)
    ready = sorted(i for i, deps in waiting.items() if not deps)
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for u in users[i]:
            waiting[u].discard(i)
            if not waiting[u]:
                ready.append(u)
        ready.sort()
    if len(order) < len(nodes):
        stuck = [describe_node(nodes[i]) for i, deps in waiting.items() if deps][:4]
        raise FrontendError(f"{where}: the graph has a cycle; these nodes wait on each other: {'; '.join(stuck)}")
    return [nodes[i] for i in order]


# == input shapes ==================================================================================
def _fix_input_shapes(
    graph: onnx.GraphProto, where: str, shapes: dict[str, Sequence[int]]
) -> list[onnx.ValueInfoProto]:
    """Write `shapes` into the graph inputs; every input must end up with a static shape."""
    constants = {init.name for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in constants]
    names = {v.name for v in inputs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        known = ", ".join(repr(n) for n in sorted(names)) or "none"
        what = "initializers (constants)" if set(unknown) <= constants else "not graph inputs"
        raise FrontendError(f"{where}: input_shapes names {unknown}, which are {what}; the inputs are {known}")
    for value in inputs:
        if not value.type.HasField("tensor_type"):
            kind = value.type.WhichOneof("value") or "no type"
            raise FrontendError(f"{where}: input {value.name!r} is a {kind}, not a tensor; only tensors are supported")
        if value.name in shapes:
            _set_shape(value, _shape_argument(where, value.name, shapes[value.name]), where)
        _require_static(value, where)
    return inputs


def _shape_argument(where: str, name: str, shape: Sequence[int]) -> tuple[int, ...]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise FrontendError(f"{where}: input_shapes[{name!r}] must be a sequence of ints, got {shape!r}") from None
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise FrontendError(f"{where}: input_shapes[{name!r}] must hold non-negative ints, got {list(dims)}")
    return dims


def _set_shape(value: onnx.ValueInfoProto, dims: tuple[int, ...], where: str) -> None:
    tensor = value.type.tensor_type
    if tensor.HasField("shape"):
        declared = tensor.shape.dim
        if len(declared) != len(dims):
            raise FrontendError(
                f"{where}: input_shapes[{value.name!r}] = {list(dims)} has rank {len(dims)}, but the model "
                f"declares {value.name!r} with rank {len(declared)} ({_dims_text(value)})"
            )
        for axis, (d, new) in enumerate(zip(declared, dims)):
            if d.HasField("dim_value") and d.dim_value != new:
                raise FrontendError(
                    f"{where}: input_shapes[{value.name!r}] = {list(dims)} contradicts the model's static "
                    f"dimension {d.dim_value} at axis {axis} ({_dims_text(value)})"
                )
    tensor.ClearField("shape")
    tensor.shape.SetInParent()  # a present, possibly empty, shape: a 0-d input is a real scalar
    for d in dims:
        tensor.shape.dim.add().dim_value = d


def _require_static(value: onnx.ValueInfoProto, where: str) -> None:
    tensor = value.type.tensor_type
    hint = f"pass input_shapes={{{value.name!r}: (...)}} to from_onnx / mlc_lab.compile"
    if not tensor.HasField("shape"):
        raise FrontendError(f"{where}: input {value.name!r} has no shape (its rank is unknown); {hint}")
    for axis, d in enumerate(tensor.shape.dim):
        if not d.HasField("dim_value"):
            raise FrontendError(
                f"{where}: input {value.name!r} has a symbolic dimension {d.dim_param or '?'} at axis {axis} "
                f"({_dims_text(value)}); shapes must be static: {hint}"
            )
        if d.dim_value < 0:
            raise FrontendError(f"{where}: input {value.name!r} has a negative dimension {d.dim_value} at axis {axis}")


def _dims_text(value: onnx.ValueInfoProto) -> str:
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in value.type.tensor_type.shape.dim]
    return f"shape [{', '.join(map(str, dims))}]"
