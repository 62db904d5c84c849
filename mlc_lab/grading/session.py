"""What an official check works with: the student's code at arm's length, cases, points.

A check is a function `check_x(g: Grading)` in a checks module, optionally decorated with
`@check(points=..., forbids=(...))`. It asks for the student's definitions through `g.need(name)`
(a proxy: calling it runs the student's function in the student's process and returns plain data)
or `g.probe(...)` (see `mlc_lab.grading.probes`), picks inputs with `g.rng` (seeded per grading
run), and records one case per input with `g.case(...)`: partial credit is the fraction of cases
passed. Every comparison runs here, in the grader's process.

The same check runs in a student's JupyterLab (`run_check`, a LocalStudent on the notebook's own
globals) for live feedback; only `mlc-lab grade` (a RemoteStudent in an isolated process) is official.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.grading import wire
from mlc_lab.grading.sandbox import SandboxError, StudentError

#: How much of an input/expected/got value a report shows.
SHOW_CHARS = 160


def check(points: float = 1.0, forbids: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Mark a check's points and the library objects a submission may not use to answer it.

    `forbids` names the package's own implementation of the exercise (dotted paths such as
    "mlc_lab.tuning.space.factorizations"): a notebook that imports or references one is flagged.
    """

    def mark(fn: Callable) -> Callable:
        fn.points, fn.forbids = float(points), tuple(forbids)
        return fn

    return mark


class CheckFailed(MlcLabError, AssertionError):
    """The whole check fails (e.g. the function it needs is not defined): no case can run."""


def show(value: Any, limit: int = SHOW_CHARS) -> str:
    """A short, one-line rendering of a value for feedback."""
    if isinstance(value, np.ndarray):
        text = np.array2string(value, threshold=20, precision=4, max_line_width=10_000)
        text = f"array{value.shape} {text}"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_student_error(exc: StudentError) -> str:
    if exc.type_name == "NotImplementedError":
        return "not implemented yet (NotImplementedError" + (f": {exc.message})" if exc.message else ")")
    return f"your code raised {exc}"


@dataclass
class Case:
    """One input of a check: passed or not, and what to show the student when not."""

    input: str
    passed: bool = False
    expected: str = ""
    got: str = ""
    message: str = ""
    hidden: bool = False


class Student(Protocol):
    def probe(self, name: str, *args: Any) -> Any: ...

    def explain_missing(self, name: str) -> str: ...


class LocalStudent:
    """The notebook's own globals, in this process (live feedback in JupyterLab and nbval)."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    def probe(self, name: str, *args: Any) -> Any:
        from mlc_lab.grading.probes import PROBES

        try:
            result = PROBES[name](self.namespace, *wire.loads(wire.dumps(list(args))))
        except (CheckFailed, wire.WireError):
            raise
        except Exception as exc:  # noqa: BLE001 - the student's error, reported as the grader would
            raise StudentError(type(exc).__name__, str(exc).strip()) from None
        return wire.loads(wire.dumps(result))  # the same data the official grader would receive

    def explain_missing(self, name: str) -> str:
        return f"`{name}` is not defined: run the cell that defines it"


class RemoteStudent:
    """The student's definitions in their isolated process (see `sandbox.Sandbox`)."""

    def __init__(self, sandbox: Any, missing: Callable[[str], str]) -> None:
        self.sandbox, self._missing = sandbox, missing

    def probe(self, name: str, *args: Any) -> Any:
        return self.sandbox.call(name, *args)

    def explain_missing(self, name: str) -> str:
        return self._missing(name)


class Remote:
    """A student's function: calling it runs it over there and returns what it returned, as data."""

    def __init__(self, student: Student, name: str) -> None:
        self.student, self.name = student, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.student.probe("call", self.name, list(args), kwargs)


@dataclass
class Grading:
    """Handed to every check: the student, a seeded generator, and the cases recorded so far."""

    student: Student
    rng: np.random.Generator
    hidden: bool = False
    cases: list[Case] = field(default_factory=list)
    origins: dict[str, dict[str, Any]] = field(default_factory=dict)

    def need(self, name: str) -> Remote:
        """The student's `name`; fails the whole check with a useful message when it is missing."""
        try:
            info = self.student.probe("lookup", name)
        except StudentError as exc:
            raise CheckFailed(f"could not look up `{name}`: {exc}") from None
        if not isinstance(info, dict) or not info.get("defined"):
            raise CheckFailed(self.student.explain_missing(name))
        self.origins[name] = info
        return Remote(self.student, name)

    def probe(self, name: str, *args: Any) -> Any:
        return self.student.probe(name, *args)

    @contextlib.contextmanager
    def case(self, input: str, expected: Any = None, hidden: bool | None = None) -> Iterator[Case]:
        """Record one case: it passes when the block finishes; an AssertionError's text says why not.

        Set `case.got` inside the block so a failure shows what the student's code returned.
        """
        record = Case(input, hidden=self.hidden if hidden is None else hidden)
        if expected is not None:
            record.expected = show(expected)
        self.cases.append(record)
        try:
            yield record
            record.passed = True
        except CheckFailed:
            self.cases.remove(record)
            raise
        except AssertionError as exc:
            record.message = str(exc).strip() or "wrong answer"
        except StudentError as exc:
            record.message = describe_student_error(exc)
        except SandboxError as exc:
            record.message = str(exc)
        except wire.WireError as exc:
            record.message = f"your code returned something the grader cannot read: {exc}"
        except Exception as exc:  # noqa: BLE001 - the student's data broke a comparison: a wrong answer
            record.message = f"unusable result ({type(exc).__name__}: {exc})"

    def compare(
        self,
        input: str,
        compute: Callable[[], Any],
        expected: Any,
        same: Callable[[Any, Any], bool] | None = None,
        hidden: bool | None = None,
    ) -> bool:
        """A case whose answer is `compute()`, right when `same(got, expected)` (default: ==)."""
        with self.case(input, expected, hidden) as record:
            got = compute()
            record.got = show(got)
            ok = same(got, expected) if same is not None else _equal(got, expected)
            assert ok, "wrong answer"
        return record.passed


def _equal(got: Any, expected: Any) -> bool:
    if isinstance(got, np.ndarray) or isinstance(expected, np.ndarray):
        return bool(np.array_equal(np.asarray(got), np.asarray(expected)))
    return bool(got == expected)


def close(rtol: float = 1e-9, atol: float = 0.0) -> Callable[[Any, Any], bool]:
    """A `same` for numbers and arrays: equal shapes, values within tolerance, no NaN sneaking in."""

    def same(got: Any, expected: Any) -> bool:
        try:
            g, e = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
        except (TypeError, ValueError):
            return False
        return g.shape == e.shape and bool(np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=False))

    return same
