"""Helpers the official checks share."""

from __future__ import annotations

from typing import Any


def need(ns: dict[str, Any], name: str) -> Any:
    """The student's definition of `name`, or a failure that says which cell to run."""
    assert name in ns, f"`{name}` is not defined: run the cell that defines it"
    return ns[name]
