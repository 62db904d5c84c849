"""Synthetic official checks for the `toy` notebooks in tests/grading_data (not a real chapter)."""

from typing import Any


def check_add(ns: dict[str, Any]) -> None:
    add = ns.get("add")
    assert callable(add), "define a function `add(a, b)`"
    assert add(2, 3) == 5, f"add(2, 3) returned {add(2, 3)!r}, expected 5"


def check_squares(ns: dict[str, Any]) -> None:
    got = ns["make_squares"](4)
    assert list(got) == [0, 1, 4, 9], f"make_squares(4) returned {got!r}, expected [0, 1, 4, 9]"


def check_total(ns: dict[str, Any]) -> None:
    assert "total" in ns, "no variable `total`: the cell that computes it did not run to the end"
    assert ns["total"] == 15, f"total is {ns['total']!r}, expected 15"
