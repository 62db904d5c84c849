"""Grading of exercise notebooks: official checks the student cannot edit away.

The protocol (chapter authors follow it):

1. Exercises live in `exercises/<stem>.md`, their solutions in `solutions/<stem>.md` (jupytext MyST
   notebooks; `.ipynb` works too). The stem names the chapter, e.g. `01_ir`.
2. The official checks of a notebook are the `check_*` functions of `mlc_lab/grading/checks/<module>.py`,
   where `<module>` is the stem made a valid module name: `01_ir` -> `ch01_ir` (see `module_name`).
   Each takes the executed notebook's namespace (a dict of its globals) and raises AssertionError
   with a message that tells the student what is wrong. Import heavy things inside the function.
3. Exercise and solution notebooks carry their own copy of each check in a cell tagged `check`:
   `from mlc_lab.grading import run_check; run_check("01_ir", "check_fold", globals())`.
   nbval on `solutions/` therefore runs exactly the official checks.
4. `grade(path)` / `mlc-lab grade PATH` drops every `check`-tagged cell, runs the remaining cells on
   the environment's `python3` kernel (nbclient, errors allowed, so a raising cell does not stop the
   checks), then appends one cell per official check that records PASS/FAIL and a message. Editing
   or deleting check cells changes nothing; renaming the notebook leaves it without checks (an error).
5. The result is a GradeReport: a table of check / PASS|FAIL / message and a score per notebook;
   `mlc-lab grade` exits 0 only when every check of every graded notebook passes.

Known limit: the student's code runs in the same kernel as the checks, so deliberate sabotage from
inside the notebook (monkeypatching mlc_lab) is not prevented; the protocol guards against edited
checks, not against an adversary.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: a notebook's `from mlc_lab.grading import run_check` must not pay for nbformat/nbclient.
_EXPORTS = {
    "CHECK_TAG": "grader",
    "grade": "grader",
    "grade_notebook": "grader",
    "NotebookFormatError": "notebooks",
    "find_notebooks": "notebooks",
    "read_notebook": "notebooks",
    "NoChecksError": "registry",
    "list_checks": "registry",
    "load_checks": "registry",
    "module_name": "registry",
    "run_check": "registry",
    "CheckResult": "report",
    "GradeReport": "report",
    "NotebookReport": "report",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"mlc_lab.grading.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'mlc_lab.grading' has no attribute {name!r}")
