"""A node of the graph IR: one operation and the one tensor it produces (SSA: a value is defined once).

Its own module so the functions over graphs (verifier, printer, interpreter) can check and build nodes
without importing `graph.py`, whose convenience methods (`verify`, `str`, calling a graph) call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.ir.types import TensorType

if TYPE_CHECKING:
    from mlc_lab.ir.graph import Graph

__all__ = ["Node"]


class Node:
    """One operation: `op(inputs, attrs) -> value of type `type``."""

    __slots__ = ("name", "op", "inputs", "attrs", "type")

    def __init__(
        self,
        op: str,
        inputs: Sequence[Node],
        attrs: Mapping[str, Any] | None,
        type: TensorType,
        name: str,
    ) -> None:
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = MappingProxyType(dict(attrs or {}))
        self.type = type
        self.name = name

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def value(self) -> np.ndarray:
        """The array of a constant node."""
        if self.op != "constant":
            raise AttributeError(f"node %{self.name} is a {self.op}, not a constant")
        return self.attrs["value"]

    @property
    def subgraph(self) -> Graph:
        """The graph a fused node stands for."""
        if "subgraph" not in self.attrs:
            raise AttributeError(f"node %{self.name} ({self.op}) has no subgraph")
        return self.attrs["subgraph"]

    def __repr__(self) -> str:
        args = ", ".join(f"%{i.name}" for i in self.inputs)
        return f"<Node %{self.name} = {self.op}({args}) : {self.type}>"
