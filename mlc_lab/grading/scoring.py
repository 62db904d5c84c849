"""Score one check: run it on a grading session and turn its cases into points (partial credit).

Shared by the official grader (`grader.py`) and the in-notebook feedback (`registry.run_check`),
which must score alike; it imports neither of them.
"""

from __future__ import annotations

from collections.abc import Callable

from mlc_lab.grading.report import CheckResult
from mlc_lab.grading.sandbox import SandboxError, StudentError
from mlc_lab.grading.session import Case, CheckFailed, Grading, describe_student_error

__all__ = ["evaluate"]


def evaluate(fn: Callable[[Grading], None], g: Grading, name: str, source: str = "official") -> CheckResult:
    """Run one check; score it from its cases (partial credit)."""
    points = float(getattr(fn, "points", 1.0))
    error = None
    try:
        fn(g)
    except CheckFailed as exc:
        error = str(exc)
    except AssertionError as exc:
        error = str(exc).strip() or "assertion failed"
    except StudentError as exc:
        error = describe_student_error(exc)
    except SandboxError as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - the student's data broke the check: it fails, the rest go on
        error = f"unusable result ({type(exc).__name__}: {exc})"
    cases = list(g.cases)
    if error is not None and cases:
        cases.append(Case("(rest of the check)", message=error, hidden=g.hidden))
    right = sum(c.passed for c in cases)
    if cases:
        earned = points * right / len(cases)
    else:
        earned = points if error is None else 0.0
    passed = error is None and right == len(cases)
    message = "" if passed else (error if not cases else _summary(cases))
    return CheckResult(name, passed, message, points, round(earned, 6), cases, source=source)


def _summary(cases: list[Case]) -> str:
    failed = [c for c in cases if not c.passed]
    if len(failed) == len(cases) and len({c.message for c in failed}) == 1:
        return failed[0].message
    first = failed[0]
    where = "a hidden case" if first.hidden else first.input
    return f"{len(failed)} of {len(cases)} cases failed, e.g. {where}: {first.message}"
