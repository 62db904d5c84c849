"""What every rewrite-pattern check asks first: the student's driver returned a valid new graph and left
the input alone (shared by the fusion chapter's and the capstone's checks)."""

from __future__ import annotations

from typing import Any

from mlc_lab.grading.session import Grading


def rewritten(g: Grading, case: Any, patterns: list[str], graph: Any) -> Any:
    """Apply the student's `patterns` (names in their notebook) to `graph` in their process; the result,
    verified, with `case.got` set to its text."""
    from mlc_lab.ir import Graph

    answer = g.probe("apply_rewrites", patterns, graph)
    out = answer["out"]
    assert isinstance(out, Graph), f"the driver returned a {type(out).__name__}, not a Graph"
    out.verify()
    case.got = str(out)
    assert answer["input_unchanged"], "your rewrite edited the input graph: build nodes with rw.make"
    return out
