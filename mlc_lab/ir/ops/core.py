"""The structural ops: graph inputs, constants (weights), and fused groups that hold a sub-graph."""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.registry import REQUIRED, OpError, OpKind, Trait, node_cost, register
from mlc_lab.ir.types import TensorType


def _input_type(types, attrs):
    raise OpError("input: a graph input carries its own type; nothing to infer")


register(
    "input", OpKind.OPAQUE, _input_type, None, arity=(0, 0), traits=[Trait.SOURCE], doc="a value the caller passes in"
)


def _constant_canon(attrs):
    value = attrs["value"]
    if not isinstance(value, np.ndarray):
        raise OpError(f"constant: value must be a numpy array, got {type(value).__name__}")
    if value.flags.writeable:  # constants are shared between graphs: freeze them
        value = value.copy()
        value.flags.writeable = False
    return {"value": value}


register(
    "constant",
    OpKind.OPAQUE,
    lambda types, attrs: TensorType.of(attrs["value"]),
    lambda value: value,
    attrs={"value": REQUIRED},
    arity=(0, 0),
    canonicalize=_constant_canon,
    traits=[Trait.SOURCE],
    doc="a tensor known at compile time (weights, folded values)",
)


def _fused_type(types, attrs):
    sub = attrs["subgraph"]
    if len(types) != len(sub.inputs):
        raise OpError(f"fused: {len(types)} inputs given, sub-graph {sub.name!r} takes {len(sub.inputs)}")
    for i, (t, s) in enumerate(zip(types, sub.inputs)):
        if t != s.type:
            raise OpError(f"fused: input {i} has type {t}, sub-graph {sub.name!r} expects {s.type} (%{s.name})")
    if len(sub.outputs) != 1:
        raise OpError(f"fused: sub-graph {sub.name!r} must have exactly one output, has {len(sub.outputs)}")
    return sub.outputs[0].type


def _fused(*inputs, subgraph, pattern):
    # Calling a Graph runs the interpreter: the registry needs no import of the interpreter (which imports it).
    return subgraph(*inputs)[0]


def _fused_flops(inputs, output, attrs) -> int:
    """The sum over the group's ops (its traffic is only at its boundary: inner values stay on chip)."""
    return sum(node_cost(n).flops for n in attrs["subgraph"].nodes)


register(
    "fused",
    OpKind.OPAQUE,
    _fused_type,
    _fused,
    attrs={"subgraph": REQUIRED, "pattern": ""},
    arity=(0, None),
    flops=_fused_flops,
    doc="a group of ops compiled as one kernel; it keeps the sub-graph it stands for",
)
