"""Shared state of the robustness suite: the size of a run and the cases it checked."""

from collections import Counter

SLOW = False  #: set by conftest from --slow
CASES: Counter = Counter()


def examples(ci: int, slow: int) -> int:
    return slow if SLOW else ci
