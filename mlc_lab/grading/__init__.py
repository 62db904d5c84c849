"""Grading of exercise notebooks: verdicts a notebook cannot forge.

The protocol (chapter authors follow it):

1. Exercises live in `exercises/<stem>.md`, their solutions in `solutions/<stem>.md` (jupytext MyST
   notebooks; `.ipynb` works too). The stem names the chapter, e.g. `01_ir`.
2. The official checks of a notebook are the `check_*` functions of `mlc_lab/grading/checks/<module>.py`,
   where `<module>` is the stem made a valid module name: `01_ir` -> `ch01_ir` (see `module_name`).
   Each takes a `session.Grading`: it gets the student's definitions through `g.need(name)` or
   `g.probe(...)`, draws inputs from `g.rng` and records cases (`g.case`, `g.compare`); `@check(points=,
   forbids=)` sets its points and the library objects a submission may not answer with.
3. Exercise and solution notebooks carry their own copy of each check in a cell tagged `check`:
   `from mlc_lab.grading import run_check; run_check("01_ir", "check_fold", globals())`: live feedback
   in the student's kernel, and what nbval on `solutions/` runs.
4. `grade(path)` / `mlc-lab grade PATH` is the official verdict: it drops every `check`-tagged cell,
   runs the rest in an isolated process (`sandbox`: own temp folder and package copy, `python -I`,
   scrubbed environment, time/memory/output limits, every process killed at the end; forked from a
   pre-started `zygote` so a class pays the interpreter's start and imports once), then runs each
   check in the grader's own process against it (`probes` run the student's code on inputs chosen
   at grading time; answers come back as JSON data, `wire`). Patching anything in the notebook's
   process changes what it answers, never how the answer is judged.
5. `integrity` flags answers that delegate to the package's own implementation of the exercise, code
   run from strings or the solutions, and changes to the package or other students' files.
6. The result is a GradeReport: per check PASS/FAIL/FLAG, points (partial credit by cases), the failed
   cases' input/expected/got, the notebook's own cell errors; as text, JSON, CSV or a gradebook.
   `mlc-lab grade` exits 0 only when every check of every graded notebook passes.
"""

from __future__ import annotations

import importlib
from typing import Any

# Lazy exports: a notebook's `from mlc_lab.grading import run_check` must not pay for nbformat/nbclient.
_EXPORTS = {
    "CHECK_TAG": "grader",
    "Options": "grader",
    "grade": "grader",
    "grade_notebook": "grader",
    "Limits": "sandbox",
    "Grading": "session",
    "check": "session",
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
