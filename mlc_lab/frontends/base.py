"""What every frontend shares; the torch, ONNX and TensorFlow modules keep only their walkers and tables.

A frontend walks the source framework's graph in order and hands each node to the converter its
table names for the node's op. This module holds the parts that do not depend on the framework:

- `ConverterContext`: what a converter sees (`cx.op`, `cx.const`, `cx.cast`, `cx.tensor`, `cx.value`,
  `cx.ints`) and how new IR nodes are named after the source node they come from;
- `same(op)`: the table entry for a source op that *is* an IR op (`"Relu": same("relu")`), so 1:1
  ops need no hand-written converter;
- `check_supported`: before anything is converted, one error that lists every op the table lacks,
  with a count and the first nodes of each;
- `converting`, `check_value`, `check_types`: errors raised inside a converter name the source node,
  and each converted value is checked against the type the framework itself inferred for it.

Nothing here imports a framework: `import mlc_lab.frontends.onnx` needs no PyTorch.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Node
from mlc_lab.ir.ops import OPS, OpError

__all__ = [
    "ConverterContext",
    "Converter",
    "FrontendError",
    "Same",
    "UnsupportedOpError",
    "Value",
    "check_supported",
    "check_types",
    "check_value",
    "clean_name",
    "converting",
    "same",
]

Value = Node | list[Node] | None
#: A table entry: `convert(cx, *inputs, **arguments) -> Node | list[Node]`, emitting IR ops through `cx`.
Converter = Callable[..., Value]
SourceNode = TypeVar("SourceNode")


# == what a converter sees ========================================================================
class ConverterContext:
    """The builder plus the source node being converted: its `label` names the IR nodes made for it.

    By default an IR node made for source node `conv1` is named `conv1.<op>` and a constant
    `conv1.<name>`; a frontend whose framework names things differently overrides `op_name` and
    `const_name`. The walker sets `label` before it calls each converter.
    """

    #: How the source framework spells a compile-time constant, for `value`'s error message.
    constant_hint = ""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder
        self.label = ""  #: the source node being converted (set by the walker)

    def op_name(self, op: str) -> str:
        return f"{self.label}.{op}"

    def const_name(self, name: str) -> str:
        return f"{self.label}.{name}"

    def op(self, op: str, *inputs: Node, **attrs: Any) -> Node:
        """Emit one IR op (its type rule checks the inputs and attributes: an `OpError` names the op)."""
        return self.b.op(op, *inputs, name=self.op_name(op), **attrs)

    def const(self, value: Any, dtype: str, name: str = "const") -> Node:
        return self.b.constant(np.asarray(value, dtype=dtype), name=self.const_name(name))

    def cast(self, x: Node, dtype: str) -> Node:
        return x if x.dtype == dtype else self.op("cast", x, dtype=dtype)

    def tensor(self, value: Node | float | int | bool, dtype: str) -> Node:
        """A node cast to `dtype` if needed; a Python scalar becomes a 0-d constant of `dtype`."""
        return self.cast(value, dtype) if isinstance(value, Node) else self.const(value, dtype)

    def value(self, node: Node | None, what: str) -> np.ndarray:
        """A compile-time constant input (a Reshape's shape, a Slice's starts) as an array."""
        if node is None or node.op != "constant":
            hint = f" ({self.constant_hint})" if self.constant_hint else ""
            raise FrontendError(f"{what} must be a constant{hint}")
        return np.asarray(node.attrs["value"])

    def ints(self, node: Node | None, what: str) -> list[int]:
        """A constant 1-D (or 0-d) integer input as a list of ints."""
        values = self.value(node, what)
        if values.dtype.kind not in "iu" or values.ndim > 1:
            raise FrontendError(
                f"{what} must be a 1-D integer tensor, got {values.dtype} of shape {list(values.shape)}"
            )
        return [int(v) for v in values.reshape(-1)]


def clean_name(name: str) -> str:
    """Framework names may hold '/', ':' and '.'; the IR prints names after '%', so keep them readable."""
    return name.strip("/").replace("/", ".").replace(":", "_") or "v"


# == 1:1 ops: a table entry, no converter ==========================================================
class Same:
    """The converter of a source op that is exactly IR op `op`: tensor inputs in order, chosen attributes.

    `attrs` maps a source argument (or attribute) name to the IR attribute it becomes. Any other
    argument that is given (not None) is refused with a `FrontendError` naming it: an argument the IR
    op cannot express is never dropped silently.
    """

    def __init__(self, op: str, attrs: Mapping[str, str]) -> None:
        if op not in OPS:
            raise FrontendError(f"same({op!r}): the IR has no op {op!r} (register it before its frontend table line)")
        self.op, self.attrs = op, dict(attrs)
        self.__name__ = self.__qualname__ = op
        self.__doc__ = f"-> IR {op}" + "".join(f", {source} as {ir}" for source, ir in self.attrs.items())

    def __call__(self, cx: ConverterContext, *inputs: Node | None, **arguments: Any) -> Node:
        tensors = list(inputs)
        while tensors and tensors[-1] is None:  # omitted optional inputs at the end (ONNX passes None)
            tensors.pop()
        if None in tensors:
            raise FrontendError(f"input {tensors.index(None)} is omitted; IR {self.op} takes its inputs in order")
        attrs = {}
        for name, value in arguments.items():
            if isinstance(value, Node):  # PyTorch passes tensors by their schema names
                tensors.append(value)
            elif name in self.attrs:
                if value is not None:
                    attrs[self.attrs[name]] = value
            elif value is not None:
                raise FrontendError(f"{name}={value!r} is not supported: IR {self.op} has no attribute for it")
        return cx.op(self.op, *tensors, **attrs)

    @property
    def __signature__(self) -> inspect.Signature:
        """(cx, *inputs, <each attribute>=None, **arguments): the ONNX walker reads accepted attributes here."""
        P = inspect.Parameter
        return inspect.Signature(
            [
                P("cx", P.POSITIONAL_OR_KEYWORD),
                P("inputs", P.VAR_POSITIONAL),
                *(P(name, P.KEYWORD_ONLY, default=None) for name in self.attrs),
                P("arguments", P.VAR_KEYWORD),
            ]
        )

    def __repr__(self) -> str:
        renamed = [repr(s) if s == i else f"{i}={s!r}" for s, i in self.attrs.items()]
        return f"same({', '.join([repr(self.op), *renamed])})"


def same(op: str, *attrs: str, **renamed: str) -> Same:
    """Table entry for a 1:1 op: `same("relu")`, `same("gelu", "approximate")`, `same("softmax", axis="dim")`.

    `attrs` are source arguments passed on under the same name; `renamed` maps IR attribute = source name.
    """
    return Same(op, {**{a: a for a in attrs}, **{source: ir for ir, source in renamed.items()}})


# == before converting: is every op in the table? ==================================================
def check_supported(
    nodes: Iterable[SourceNode],
    problem: Callable[[SourceNode], tuple[str, str] | None],
    site: Callable[[SourceNode], str],
    *,
    subject: str,
    frontend: str,
    framework: str,
    table: str,
    supported: Sequence[str],
    advice: str,
) -> None:
    """Raise one `UnsupportedOpError` listing every op that cannot be converted, before converting any.

    problem(node): (the op as the framework names it, why it cannot be converted), or None if it can.
    site(node): where the node is, e.g. `'my_node' -> 'y'` or `%cumsum at model.py:12 in forward`.
    Nodes are grouped per op and reason, with a count and the first three sites of each.
    """
    problems: dict[tuple[str, str], list[SourceNode]] = {}
    for node in nodes:
        found = problem(node)
        if found is not None:
            problems.setdefault(found, []).append(node)
    if not problems:
        return
    ops = ", ".join(dict.fromkeys(op for op, _ in problems))
    lines = [f"{op}: {why} ({_some_sites(found, site)})" for (op, why), found in problems.items()]
    listing = textwrap.fill(", ".join(supported), width=110, initial_indent="  ", subsequent_indent="  ")
    raise UnsupportedOpError(
        f"{subject} uses ops mlc_lab.frontends.{frontend} cannot convert: {ops}\n  "
        + "\n  ".join(lines)
        + f"\nSupported {framework} ops:\n{listing}\nAdd a converter to {table}, or {advice}."
    )


def _some_sites(nodes: list[Any], site: Callable[[Any], str], shown: int = 3) -> str:
    more = f", and {len(nodes) - shown} more" if len(nodes) > shown else ""
    return f"{len(nodes)} node{'s' if len(nodes) > 1 else ''}: " + ", ".join(map(site, nodes[:shown])) + more


# == while converting: errors name the node, results match the framework's types ==================
@contextmanager
def converting(label: str) -> Iterator[None]:
    """An error a converter (or an IR op's type rule) raises gets the source node's description in front."""
    try:
        yield
    except (OpError, FrontendError) as e:
        kind = UnsupportedOpError if isinstance(e, UnsupportedOpError) else FrontendError  # keep "unsupported"
        raise kind(f"{label}: {e}") from None


def check_value(
    label: str,
    what: str,
    value: Node,
    shape: Sequence[int | None] | None,
    dtype: str | None,
    source: str,
    blame: str = "a bug in the converter",
) -> None:
    """One converted value against the framework's type for it: `shape` (None, or None dims: unknown), `dtype`.

    source: who computed the expected type ("ONNX inferred", "TensorFlow inferred", "the model declares").
    """
    if shape is not None and None not in shape and tuple(shape) != value.shape:
        raise FrontendError(
            f"{label}: it computes shape {list(value.shape)} for {what} but {source} {list(shape)} ({blame})"
        )
    if dtype is not None and dtype != value.dtype:
        raise FrontendError(f"{label}: it computes dtype {value.dtype} for {what} but {source} {dtype} ({blame})")


def check_types(label: str, got: Sequence[Any], want: Sequence[Any], source: str) -> None:
    """All results of one node at once (TensorTypes, or plain values such as None) against the framework's."""
    if list(got) != list(want):
        show = lambda ts: ", ".join(map(str, ts))
        raise FrontendError(
            f"{label}: the converter produced {show(got)} but {source} {show(want)} (a bug in the converter)"
        )
