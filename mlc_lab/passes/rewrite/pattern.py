"""A small pattern language over the graph IR: describe a piece of dataflow, then find it.

    conv = op("conv2d")(wildcard("x"), const("w")).one_use().named("conv")
    bn = op("batch_norm")(conv, const(), ...)          # `...`: the remaining inputs are free

A pattern is matched at a root node and looks *up* the use-def edges (the node's inputs), as TVM's
`relax.dpl` and xDSL's `RewritePattern`s do. Matching backtracks: `p | q` tries p then q, an operand
pattern tries every input, and a name captured twice must be the same node, so `op("add")(x, x)`
only matches an add of a value with itself. Each match is a `Match`: the root, the captured nodes by
name, and every node the pattern inspected (what a rewrite consumes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from mlc_lab.ir import Graph, Node


@dataclass(frozen=True)
class MatchContext:
    """What one-use constraints need to know about the graph a match is looked for in."""

    users: Mapping[Node, list[Node]]
    outputs: frozenset[Node]

    @classmethod
    def of(cls, graph: Graph) -> MatchContext:
        return cls(graph.users(), frozenset(graph.outputs))

    def used_once(self, node: Node) -> bool:
        """Read by exactly one input slot of one node, and not a graph output."""
        return len(self.users.get(node, ())) == 1 and node not in self.outputs


@dataclass(frozen=True)
class Match:
    """A successful match: `root`, the captures by name, and the inspected nodes (root first)."""

    root: Node
    captures: Mapping[str, Node]
    nodes: tuple[Node, ...]

    def __getitem__(self, name: str) -> Node:
        try:
            return self.captures[name]
        except KeyError:
            have = sorted(self.captures)
            raise KeyError(f"the match at %{self.root.name} captured no {name!r}; it has {have}") from None

    def __contains__(self, name: str) -> bool:
        return name in self.captures


# A partial match while searching: captures and inspected nodes, grown immutably along one branch.
_State = tuple[dict[str, Node], tuple[Node, ...]]


class Pattern:
    """Base class; combine patterns with `|`, `.named`, `.where`, `.one_use`."""

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        raise NotImplementedError

    def matches(self, node: Node, ctx: MatchContext) -> Iterator[Match]:
        """Every way this pattern matches at `node`, in preference order."""
        for captures, nodes in self._match(node, ctx, ({}, ())):
            yield Match(node, captures, nodes)

    def match(self, node: Node, ctx: MatchContext) -> Match | None:
        """The first match at `node`, or None."""
        return next(self.matches(node, ctx), None)

    def __or__(self, other: Pattern) -> Pattern:
        return Alternatives((self, other))

    def named(self, name: str) -> Pattern:
        """Capture the matched node as `match[name]`."""
        return Capture(self, name)

    def where(self, predicate: Callable[[Node], bool]) -> Pattern:
        """Match only nodes for which `predicate(node)` is true (asked after the rest of this pattern matched)."""
        return Where(self, predicate)

    def one_use(self) -> Pattern:
        """Match only a node read once and not a graph output (so a rewrite may consume it)."""
        return OneUse(self)


@dataclass(frozen=True)
class Wildcard(Pattern):
    """Any node. It is not inspected: a rewrite may read it but does not consume it."""

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        yield state


@dataclass(frozen=True)
class OpPattern(Pattern):
    """A node whose op is one of `ops` (None: any op), whose attributes equal `attrs`, and whose inputs
    match `args` in order (`rest`: further inputs are free; `args` None: inputs unconstrained)."""

    ops: frozenset[str] | None
    attrs: tuple[tuple[str, Any], ...] = ()
    args: tuple[Pattern, ...] | None = None
    rest: bool = False
    operand: Pattern | None = None  # some input (any position) matches this

    def __call__(self, *args: Pattern | EllipsisType) -> OpPattern:
        """Constrain the inputs: `op("add")(wildcard(), const())`; a trailing `...` leaves the rest free."""
        rest = bool(args) and args[-1] is Ellipsis
        patterns = args[:-1] if rest else args
        for a in patterns:
            if not isinstance(a, Pattern):
                raise TypeError(f"pattern arguments must be patterns (or a trailing ...), got {a!r}")
        return OpPattern(self.ops, self.attrs, tuple(patterns), rest, self.operand)

    def with_operand(self, pattern: Pattern) -> OpPattern:
        """Some input, at whatever position, matches `pattern` (each position is tried in order)."""
        return OpPattern(self.ops, self.attrs, self.args, self.rest, pattern)

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        if self.ops is not None and node.op not in self.ops:
            return
        if any(key not in node.attrs or node.attrs[key] != value for key, value in self.attrs):
            return
        if self.args is not None:
            have, want = len(node.inputs), len(self.args)
            if have < want or (have != want and not self.rest):
                return
        captures, nodes = state
        state = (captures, (*nodes, node))
        yield from self._match_args(node, ctx, state, 0)

    def _match_args(self, node: Node, ctx: MatchContext, state: _State, k: int) -> Iterator[_State]:
        if self.args is not None and k < len(self.args):
            for after in self.args[k]._match(node.inputs[k], ctx, state):
                yield from self._match_args(node, ctx, after, k + 1)
            return
        if self.operand is None:
            yield state
            return
        for x in node.inputs:
            yield from self.operand._match(x, ctx, state)


@dataclass(frozen=True)
class Alternatives(Pattern):
    options: tuple[Pattern, ...]

    def __or__(self, other: Pattern) -> Pattern:
        return Alternatives((*self.options, other))

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        for option in self.options:
            yield from option._match(node, ctx, state)


@dataclass(frozen=True)
class Capture(Pattern):
    inner: Pattern
    name: str

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        captures, nodes = state
        bound = captures.get(self.name)
        if bound is not None and bound is not node:
            return  # the same name must be the same node
        for inner_captures, inner_nodes in self.inner._match(node, ctx, state):
            yield ({**inner_captures, self.name: node}, inner_nodes)


@dataclass(frozen=True)
class Where(Pattern):
    inner: Pattern
    predicate: Callable[[Node], bool] = field(compare=False)

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        checked = None  # the predicate runs once the inner pattern matched (so it may read op attributes)
        for after in self.inner._match(node, ctx, state):
            if checked is None:
                checked = bool(self.predicate(node))
            if not checked:
                return
            yield after


@dataclass(frozen=True)
class OneUse(Pattern):
    inner: Pattern

    def _match(self, node: Node, ctx: MatchContext, state: _State) -> Iterator[_State]:
        if ctx.used_once(node):
            yield from self.inner._match(node, ctx, state)


# -- the vocabulary ------------------------------------------------------------------------------------
def op(*names: str, **attrs: Any) -> OpPattern:
    """A node of one of the ops `names` (none given: any op) whose attributes equal `attrs`."""
    return OpPattern(frozenset(names) or None, tuple(sorted(attrs.items())))


def wildcard(name: str | None = None) -> Pattern:
    """Any node (captured as `name` if given)."""
    return Wildcard() if name is None else Capture(Wildcard(), name)


def const(name: str | None = None) -> Pattern:
    """A constant node (captured as `name` if given)."""
    pattern: Pattern = OpPattern(frozenset({"constant"}))
    return pattern if name is None else Capture(pattern, name)
