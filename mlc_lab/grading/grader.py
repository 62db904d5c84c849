"""Grade exercise notebooks: run the student's cells, then the official checks, one cell each."""

from __future__ import annotations

import copy
import os
import secrets
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mlc_lab.grading.notebooks import NotebookFormatError, find_notebooks, read_notebook, use_environment_kernels
from mlc_lab.grading.registry import NoChecksError, checks_file, list_checks, module_name
from mlc_lab.grading.report import CheckResult, GradeReport, NotebookReport
from mlc_lab.grading.runtime import MIME

#: Cells carrying this tag are the notebook's own copies of the checks; the grader drops them.
CHECK_TAG = "check"


def _code_cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source, metadata={"mlc_lab": {"grader": True}})


def graded_notebook(
    nb: nbformat.NotebookNode,
    notebook: str,
    check_names: list[str],
    token: str,
    checks: str | None = None,
) -> nbformat.NotebookNode:
    """The student's cells minus `check`-tagged ones, then one recording cell per official check."""
    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if CHECK_TAG not in c.get("metadata", {}).get("tags", [])]
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.cells.append(_code_cell("from mlc_lab.grading.runtime import record_check as _mlc_lab_record_check"))
    for name in check_names:
        call = f"_mlc_lab_record_check({notebook!r}, {name!r}, globals(), token={token!r}, checks={checks!r})"
        out.cells.append(_code_cell(call))
    return out


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = 600, kernel_name: str = "python3") -> str | None:
    """Run every cell even after errors; returns why execution stopped early, or None."""
    use_environment_kernels()
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel_name,
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout={"ename": "CellTimeoutError", "evalue": f"cell ran past {timeout} s", "traceback": []},
        record_timing=False,
        extra_arguments=["--log-level=ERROR"],  # the kernel's "TCP without encryption" note is noise here
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    except Exception as exc:  # noqa: BLE001 - a dead kernel (sys.exit, segfault) must not stop the report
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return None


def verdicts(nb: nbformat.NotebookNode, token: str) -> dict[str, CheckResult]:
    """Check results found in the outputs of the grader's own cells (never the student's)."""
    found: dict[str, CheckResult] = {}
    for cell in nb.cells:
        if not cell.get("metadata", {}).get("mlc_lab", {}).get("grader"):
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get(MIME) if output.get("output_type") == "display_data" else None
            if isinstance(data, dict) and data.get("token") == token:
                found[data["check"]] = CheckResult(data["check"], bool(data["passed"]), str(data["message"]))
    return found


def grade_notebook(
    path: str | os.PathLike[str],
    checks: str | os.PathLike[str] | None = None,
    timeout: int = 600,
    kernel_name: str = "python3",
) -> NotebookReport:
    """Grade one notebook against the checks module named after its file stem."""
    path = Path(path).resolve()
    notebook = path.stem
    if checks is not None and Path(checks).is_dir():
        checks = str(Path(checks).resolve())  # the kernel runs in the notebook's folder
    report = NotebookReport(path, module_name(notebook))
    try:
        report.checks_module = str(checks_file(notebook, checks))
        names = list_checks(notebook, checks)
        if not names:
            raise NoChecksError(f"{report.checks_module} defines no check_* functions")
        nb = read_notebook(path)
    except (NoChecksError, NotebookFormatError, OSError, nbformat.ValidationError) as exc:
        report.error = str(exc)
        return report
    token = secrets.token_hex(16)
    run = graded_notebook(nb, notebook, names, token, None if checks is None else str(checks))
    stopped = execute(run, path.parent, timeout, kernel_name)
    found = verdicts(run, token)
    missing = f"not run: {stopped}" if stopped else "no verdict recorded (did the notebook's code hijack output?)"
    report.results = [found.get(name, CheckResult(name, False, missing)) for name in names]
    return report


def grade(
    path: str | os.PathLike[str],
    checks: str | os.PathLike[str] | None = None,
    timeout: int = 600,
    kernel_name: str = "python3",
) -> GradeReport:
    """Grade a notebook, or every notebook in a folder that has official checks (others are skipped)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    if path.is_dir():
        targets = []
        for nb in find_notebooks(path):
            try:
                checks_file(nb.stem, checks)
                targets.append(nb)
            except NoChecksError:
                pass
    else:
        targets = [path]
    return GradeReport([grade_notebook(p, checks, timeout, kernel_name) for p in targets])
