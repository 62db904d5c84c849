"""Passes and the pass manager.

A pass is a function Graph -> Graph that never edits its input. It is named (its class name) and
its options are dataclass fields, so `repr(pass)` shows the full configuration and two passes with
the same options compare equal. The PassManager runs a pipeline,
verifies the graph after every pass (so a broken graph is blamed on the pass that broke it), and can
print the IR before/after each pass or as a diff: the way the book explains what a pass did.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO

from mlc_lab.errors import MlcLabError
from mlc_lab.ir import Graph, VerificationError


class PassError(MlcLabError, RuntimeError):
    pass


class Pass:
    """Subclass and implement `run`; declare options as fields of a `@dataclass` subclass.
    `apply` is the public entry point."""

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def options(self) -> dict[str, Any]:
        """The pass's options (its dataclass fields) by name; empty for a pass without fields."""
        if not dataclasses.is_dataclass(self):
            return {}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}

    def run(self, graph: Graph) -> Graph:
        raise NotImplementedError(f"{self.name}.run")

    def apply(self, graph: Graph) -> Graph:
        return self.run(graph)

    def __call__(self, graph: Graph) -> Graph:
        return self.apply(graph)

    def __repr__(self) -> str:
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.options.items()) + ")"


@dataclass
class PassRecord:
    name: str
    seconds: float
    ops_before: int
    ops_after: int
    before: Graph
    after: Graph

    def diff(self) -> str:
        return ir_diff(self.before, self.after, self.name)


PrintMode = Literal["before", "after", "both", "diff"] | bool


class PassManager(Pass):
    """Run passes in order: `PassManager([FoldConstants(), DeadCodeElimination()]).apply(graph)`."""

    def __init__(
        self,
        passes: Sequence[Pass],
        verify: bool = True,
        print_ir: PrintMode = False,
        file: TextIO | None = None,
    ) -> None:
        for p in passes:
            if not hasattr(p, "apply"):
                raise TypeError(f"{p!r} is not a pass (it has no .apply(graph) method)")
        self.passes = list(passes)
        self.verify = verify
        self.print_ir = "after" if print_ir is True else print_ir
        self.file = file
        self.history: list[PassRecord] = []

    def _print(self, text: str) -> None:
        print(text, file=self.file or sys.stdout)

    def run(self, graph: Graph) -> Graph:
        if self.verify:
            graph.verify()
        self.history = []
        for p in self.passes:
            name = getattr(p, "name", type(p).__name__)
            if self.print_ir in ("before", "both"):
                self._print(f"// ----- IR before {name} -----\n{graph}")
            start = time.perf_counter()
            result = p.apply(graph)
            seconds = time.perf_counter() - start
            if not isinstance(result, Graph):
                raise PassError(f"pass {name} returned {type(result).__name__}, not a Graph")
            if self.verify:
                try:
                    result.verify()
                except VerificationError as e:
                    raise PassError(f"pass {name} produced an invalid graph: {e}") from e
            record = PassRecord(name, seconds, len(graph.ops), len(result.ops), graph, result)
            self.history.append(record)
            if self.print_ir in ("after", "both"):
                self._print(f"// ----- IR after {name} -----\n{result}")
            elif self.print_ir == "diff":
                self._print(record.diff() or f"// {name}: no change")
            graph = result
        return graph

    def summary(self) -> str:
        rows = [f"{'pass':<28}{'ops before':>11}{'ops after':>11}{'ms':>9}"]
        for r in self.history:
            rows.append(f"{r.name:<28}{r.ops_before:>11}{r.ops_after:>11}{r.seconds * 1e3:>9.2f}")
        return "\n".join(rows)


def ir_diff(before: Graph, after: Graph, label: str = "pass") -> str:
    """A unified diff of the text forms: what a pass changed, line by line."""
    lines = difflib.unified_diff(
        str(before).splitlines(), str(after).splitlines(), f"before {label}", f"after {label}", lineterm="", n=1
    )
    return "\n".join(lines)
