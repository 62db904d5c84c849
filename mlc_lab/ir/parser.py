"""Read the printer's text form back into a Graph: `parse_graph(str(g), constant_payloads(g))` equals g.

So a pass test can state its input and its expected output as IR text. Small constants carry their
values in the text; larger ones print only their type, and their arrays come in `constants`, by
name (see `mlc_lab.ir.printer`). The parsed graph is verified: a type that does not follow from the
op's type rule is an error naming the node and its line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.graph import Graph
from mlc_lab.ir.node import Node
from mlc_lab.ir.ops import OpError, get_op
from mlc_lab.ir.printer import default_subgraph_name
from mlc_lab.ir.types import DTYPES, SymDim, TensorType
from mlc_lab.ir.verifier import VerificationError, verify

__all__ = ["ParseError", "parse_graph"]

_SHORT_DTYPE = {short: full for full, short in DTYPES.items()}
_WS = re.compile(r"[ \t\r\n]*")
_COMMENT = re.compile(r"//[^\n]*")
_BARE = re.compile(r"[A-Za-z0-9_.$\-]+")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"-?\d+(?![\d.eE])")
_SYMDIM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*<=\s*(\d+)")
_NUMBER = re.compile(r"-?(?:inf|nan)\b|[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class ParseError(MlcLabError, ValueError):
    """The text is not a graph in the printer's form; the message gives the line and what was expected."""


class _Reader:
    """A cursor over the text; every error says where."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def where(self) -> str:
        line = self.text.count("\n", 0, self.pos) + 1
        start = self.text.rfind("\n", 0, self.pos) + 1
        end = self.text.find("\n", self.pos)
        return f"line {line}: {self.text[start : end if end >= 0 else None].strip()!r}"

    def error(self, message: str) -> ParseError:
        return ParseError(f"{message} ({self.where()})")

    def skip(self, comments: bool = True) -> None:
        while True:
            self.pos = _WS.match(self.text, self.pos).end()
            if not (comments and self.text.startswith("//", self.pos)):
                return
            self.pos = _COMMENT.match(self.text, self.pos).end()

    def peek(self, literal: str, comments: bool = True) -> bool:
        self.skip(comments)
        return self.text.startswith(literal, self.pos)

    def accept(self, literal: str, comments: bool = True) -> bool:
        if self.peek(literal, comments):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, what: str | None = None, comments: bool = True) -> None:
        if not self.accept(literal, comments):
            raise self.error(f"expected {what or repr(literal)}")

    def regex(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip()
        m = pattern.match(self.text, self.pos)
        if m is None:
            raise self.error(f"expected {what}")
        self.pos = m.end()
        return m.group()

    def name(self, what: str = "a name") -> str:
        """A bare or JSON-quoted name (after `%`, or a graph's)."""
        self.skip()
        if self.text.startswith('"', self.pos):
            return json.loads(self.regex(_QUOTED, what))
        return self.regex(_BARE, what)

    def ref(self) -> str:
        self.expect("%", "a value (%name)")
        return self.name()

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)


def _type(r: _Reader) -> TensorType:
    short = r.regex(_WORD, f"a type such as f32[1, 4] (element types: {', '.join(_SHORT_DTYPE)})")
    if short not in _SHORT_DTYPE:
        raise r.error(f"unknown element type {short!r}; the IR has {', '.join(_SHORT_DTYPE)}")
    r.expect("[")
    dims: list[int] = []
    while not r.accept("]"):
        if dims:
            r.expect(",", "',' or ']'")
        dims.append(_symbolic_dim(r) or int(r.regex(_INT, "a dimension")))
    return TensorType(tuple(dims), _SHORT_DTYPE[short])


def _symbolic_dim(r: _Reader) -> SymDim | None:
    """`n<=256` (a SymDim as the printer writes it), or None (the reader has not moved) if none is next."""
    r.skip()
    match = _SYMDIM.match(r.text, r.pos)
    if match is None:
        return None
    r.pos = match.end()
    try:
        return SymDim(match.group(1), int(match.group(2)))
    except ValueError as e:
        raise r.error(str(e)) from None


def _attr_value(r: _Reader) -> Any:
    r.skip()
    if r.accept("["):
        items: list[Any] = []
        while not r.accept("]"):
            if items:
                r.expect(",", "',' or ']'")
            items.append(_attr_value(r))
        return tuple(items)
    if r.peek('"'):
        return json.loads(r.regex(_QUOTED, "a string"))
    for word, value in (("true", True), ("false", False), ("none", None)):
        if r.text.startswith(word, r.pos) and not _WORD.match(r.text, r.pos + len(word)):
            r.pos += len(word)
            return value
    symbolic = _symbolic_dim(r)
    if symbolic is not None:
        return symbolic
    text = r.regex(_NUMBER, "an attribute value (number, string, true/false/none or [list])")
    return int(text) if _INT.fullmatch(text) else float(text)


def _literal(r: _Reader) -> Any:
    """A constant's values as printed by numpy: nested [..] of numbers, nan/inf, True/False."""
    if r.accept("["):
        items: list[Any] = []
        while not r.accept("]"):
            if items:
                r.expect(",", "',' or ']'")
            items.append(_literal(r))
        return items
    r.skip()
    for word, value in (("True", True), ("False", False)):
        if r.text.startswith(word, r.pos):
            r.pos += len(word)
            return value
    text = r.regex(_NUMBER, "a constant value")
    return int(text) if _INT.fullmatch(text) else float(text)


def _constant_value(r: _Reader, literal: Any, ty: TensorType, name: str) -> np.ndarray:
    try:
        value = np.array(literal, dtype=ty.dtype)
    except (OverflowError, ValueError, TypeError) as e:
        raise r.error(f"constant %{name}: values do not fit {ty.dtype}: {e}") from None
    if value.size == 0 and math.prod(ty.shape) == 0:
        value = value.reshape(ty.shape)
    if value.shape != ty.shape:
        raise r.error(f"constant %{name}: values of shape {list(value.shape)} for type {ty}")
    return value


class _GraphParser:
    def __init__(self, r: _Reader, constants: Mapping[str, np.ndarray]) -> None:
        self.r = r
        self.constants = constants

    def graph(self) -> Graph:
        r = self.r
        r.expect("graph", "'graph NAME(...) -> (...) {'")
        name = r.name("a graph name")
        r.expect("(")
        scope: dict[str, Node] = {}
        inputs: list[Node] = []
        while not r.accept(")"):
            if inputs:
                r.expect(",", "',' or ')'")
            param = r.ref()
            r.expect(":")
            inputs.append(self.define(scope, Node("input", (), None, _type(r), param)))
        r.expect("->")
        r.expect("(")
        result_types: list[TensorType] = []
        while not r.accept(")"):
            if result_types:
                r.expect(",", "',' or ')'")
            result_types.append(_type(r))
        r.expect("{")
        graph = self.body(name, scope, inputs)
        if [o.type for o in graph.outputs] != result_types:
            raise r.error(f"graph {name!r} declares results ({', '.join(map(str, result_types))}) "
                          f"but returns ({', '.join(str(o.type) for o in graph.outputs)})")
        return graph

    def define(self, scope: dict[str, Node], node: Node) -> Node:
        if node.name in scope:
            raise self.r.error(f"%{node.name} is defined twice")
        scope[node.name] = node
        return node

    def lookup(self, scope: dict[str, Node], name: str) -> Node:
        if name not in scope:
            raise self.r.error(f"%{name} is used before it is defined")
        return scope[name]

    def body(self, name: str, scope: dict[str, Node], inputs: list[Node]) -> Graph:
        """Statements up to `return ...` and the closing brace."""
        r = self.r
        nodes = list(inputs)
        while not r.accept("return"):
            if r.at_end():
                raise r.error(f"graph {name!r} ends without 'return'")
            nodes.append(self.define(scope, self.statement(scope)))
        outputs: list[Node] = []
        while not r.accept("}"):
            if outputs:
                r.expect(",", "',' or '}'")
            outputs.append(self.lookup(scope, r.ref()))
        return Graph(nodes, inputs, outputs, name)

    def statement(self, scope: dict[str, Node]) -> Node:
        r = self.r
        name = r.ref()
        r.expect("=")
        op = r.regex(_WORD, "an op name")
        if op == "constant":
            return self.constant(name)
        try:
            opdef = get_op(op)
        except OpError as e:
            raise r.error(str(e)) from None
        r.expect("(")
        args: list[Node] = []
        while not r.accept(")"):
            if args:
                r.expect(",", "',' or ')'")
            args.append(self.lookup(scope, r.ref()))
        attrs: dict[str, Any] = {}
        if r.accept("{"):
            while not r.accept("}"):
                if attrs:
                    r.expect(",", "',' or '}'")
                key = r.regex(_WORD, "an attribute name")
                r.expect("=")
                attrs[key] = _attr_value(r)
        r.expect(":", "':' and the result type")
        ty = _type(r)
        if op == "fused":
            attrs["subgraph"] = self.fused_body(args, attrs.get("pattern", ""))
        try:
            attrs = opdef.normalize_attrs(attrs)
        except OpError as e:
            raise r.error(f"%{name}: {e}") from None
        return Node(op, tuple(args), attrs, ty, name)

    def constant(self, name: str) -> Node:
        r = self.r
        literal = None if r.peek(":") else _literal(r)
        r.expect(":", "':' and the constant's type")
        ty = _type(r)
        if literal is not None:
            value = _constant_value(r, literal, ty, name)
        elif name in self.constants:
            value = np.asarray(self.constants[name])
            if TensorType.of(value) != ty:
                raise r.error(f"payload for constant %{name} is {TensorType.of(value)}, the text says {ty}")
        else:
            raise r.error(f"constant %{name} ({ty}) prints no values and no payload was given for it "
                          f"(parse_graph(text, constants={{{name!r}: array}}))")
        return Node("constant", (), get_op("constant").normalize_attrs({"value": value}), ty, name)

    def fused_body(self, args: list[Node], pattern: str) -> Graph:
        """`{ // %p0 = %x, ...  [// graph NAME]  body }`: the sub-graph a fused node stands for."""
        r = self.r
        r.expect("{", "'{' and the fused node's sub-graph")
        r.expect("//", "'// %p0 = %x, ...' binding the sub-graph's parameters", comments=False)
        line_end = r.text.find("\n", r.pos)
        line_end = len(r.text) if line_end < 0 else line_end
        line = _Reader(r.text[: line_end])  # the binding line alone, so the next statement is not read
        line.pos = r.pos
        scope: dict[str, Node] = {}
        params: list[Node] = []
        while not line.at_end():
            if params:
                line.expect(",", "',' between parameters")
            param = line.ref()
            line.expect("=")
            outer = line.ref()
            if len(params) >= len(args) or args[len(params)].name != outer:
                raise r.error(f"fused parameter %{param} is bound to %{outer}, not to the fused node's input")
            params.append(self.define(scope, Node("input", (), None, args[len(params)].type, param)))
        r.pos = line_end
        if len(params) != len(args):
            raise r.error(f"the fused node has {len(args)} inputs but its sub-graph binds {len(params)}")
        name = default_subgraph_name(pattern)
        if r.accept("// graph ", comments=False):
            name = r.name("a sub-graph name")
        return self.body(name, scope, params)


def parse_graph(text: str, constants: Mapping[str, np.ndarray] | None = None, *, check: bool = True) -> Graph:
    """The graph `text` describes (one `graph ... { ... }` in the printer's form).

    constants: arrays for the constants the text shows no values for, by name
    (`mlc_lab.ir.printer.constant_payloads(graph)` gives them for a printed graph).
    check: verify the result (types follow from the ops' type rules); errors name the node.
    """
    r = _Reader(text)
    graph = _GraphParser(r, constants or {}).graph()
    if not r.at_end():
        raise r.error("unexpected text after the graph's closing '}'")
    if check:
        try:
            verify(graph)
        except VerificationError as e:
            raise ParseError(f"the parsed graph {graph.name!r} is not valid: {e}") from None
    return graph
