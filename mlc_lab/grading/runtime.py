"""The kernel side of grading: run one check, never raise, and report the verdict as output.

The grader appends one cell per check calling `record_check`. Catching everything here is what
lets one failing check (or a student's stub raising NotImplementedError) leave the others running.
The verdict travels as a display_data output of a private MIME type, stamped with a token the
grader made up for this run, so neither prints nor a student's stale outputs are mistaken for it.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from mlc_lab.grading.registry import get_check

MIME = "application/vnd.mlc-lab.check+json"


def describe(exc: BaseException) -> str:
    """A one-paragraph message: the assertion text as written, or `ErrorType: message` otherwise."""
    if isinstance(exc, AssertionError):
        text = str(exc).strip()
        if text:
            return text
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"assertion failed: {frame.line}"
    if isinstance(exc, NotImplementedError):
        detail = str(exc).strip()
        return "not implemented yet (NotImplementedError" + (f": {detail})" if detail else ")")
    if isinstance(exc, NameError):
        return f"{exc} (did a cell above fail, or was it not run?)"
    return f"{type(exc).__name__}: {exc}"


def record_check(
    notebook: str,
    check: str,
    namespace: dict[str, Any],
    token: str,
    checks: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Run one check and display its verdict; returns it too (handy when called by hand)."""
    try:
        get_check(notebook, check, checks)(namespace)
        verdict = {"check": check, "passed": True, "message": ""}
    except BaseException as exc:  # noqa: BLE001 - a check that exits or is interrupted still fails, and only it
        if isinstance(exc, KeyboardInterrupt):
            verdict = {"check": check, "passed": False, "message": "interrupted (timeout?)"}
        else:
            verdict = {"check": check, "passed": False, "message": describe(exc)}
    verdict["token"] = token
    from IPython.display import display

    display({MIME: verdict, "text/plain": f"{check}: {'PASS' if verdict['passed'] else 'FAIL'}"}, raw=True)
    return verdict
