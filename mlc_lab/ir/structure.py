"""How a model arranged its results: nested tuples, lists, dicts and namedtuples of tensors.

The IR has a flat list of outputs. A frontend that knows the model returned `{"logits": y, "aux": z}`
records an `OutputStructure` on the graph (`Graph.output_structure`), so that the compiled callable
hands back a dict with the same keys, not a tuple the caller has to decode by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: The containers a structure may hold (anything else is refused by the frontend that records it).
KINDS = ("leaf", "tuple", "list", "dict", "namedtuple")


@dataclass(frozen=True)
class OutputStructure:
    """One node of the tree: a leaf (one graph output) or a container of sub-structures."""

    kind: str = "leaf"
    children: tuple[OutputStructure, ...] = ()
    keys: tuple[Any, ...] = ()  #: a dict's keys, in order
    namedtuple_type: type | None = None  #: the namedtuple class to rebuild
    #: a dict subclass to rebuild instead of a plain dict (transformers' ModelOutput: `out.logits` works)
    dict_type: type | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"output structure kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if self.kind == "dict" and len(self.keys) != len(self.children):
            raise ValueError(f"dict structure with {len(self.keys)} keys and {len(self.children)} values")

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind == "leaf" else sum(c.num_leaves for c in self.children)

    def unflatten(self, leaves: Sequence[Any]) -> Any:
        """The flat outputs (in graph output order) rebuilt into this structure."""
        if len(leaves) != self.num_leaves:
            raise ValueError(f"output structure holds {self.num_leaves} tensors, got {len(leaves)}")
        it = iter(leaves)
        return self._build(it)

    def _build(self, it: Any) -> Any:
        if self.kind == "leaf":
            return next(it)
        values = [c._build(it) for c in self.children]
        if self.kind == "tuple":
            return tuple(values)
        if self.kind == "list":
            return values
        if self.kind == "dict":
            items = dict(zip(self.keys, values))
            return self.dict_type(**items) if self.dict_type is not None else items
        return self.namedtuple_type(*values)
