"""Grade submissions: each in its own isolated process, every verdict computed here.

For one notebook: read it from a snapshot of its bytes (taken before any submission runs, so no
student can change another's file), drop its `check`-tagged cells, inspect the rest with `ast`
(integrity), run them in a `Sandbox` (a temporary folder holding a copy of the submission; the process
forked from this grading process's `zygote`, which imported a private copy of the package once and is
replaced when a submission changed that copy), then run each official check here against the student's process
through probes, on inputs chosen now from a per-run seed. The installed package and the class's
submission files are verified (and restored) after each submission; a change flags the submission.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

import mlc_lab
from mlc_lab.grading import cleanup, integrity, zygote
from mlc_lab.grading.notebooks import NotebookFormatError, find_notebooks, preload_readers, read_notebook
from mlc_lab.grading.registry import NoChecksError, checks_file, list_checks, load_checks, module_name
from mlc_lab.grading.report import CheckResult, GradeReport, NotebookReport
from mlc_lab.grading.sandbox import CellOutcome, Limits, Sandbox, base_environment
from mlc_lab.grading.scoring import evaluate
from mlc_lab.grading.session import Grading, RemoteStudent

#: Cells carrying this tag are the notebook's own copies of the checks; the grader drops them.
CHECK_TAG = "check"
PACKAGE_DIR = Path(mlc_lab.__file__).resolve().parent


@dataclass(frozen=True)
class Options:
    """How to grade: limits, instructor check folders, the run's seed, what to guard."""

    limits: Limits = Limits()
    checks: tuple[str, ...] = ()
    seed: int | None = None
    guard: tuple[str, ...] | None = None  # None: the installed package

    def guarded(self) -> tuple[Path, ...]:
        return (PACKAGE_DIR,) if self.guard is None else tuple(Path(p) for p in self.guard)


@dataclass
class CheckModule:
    module: ModuleType
    names: list[str]
    source: str  # "official" or "instructor"
    hidden: bool = False


def check_modules(notebook: str, checks: Sequence[str] = ()) -> list[CheckModule]:
    """The shipped checks of a notebook plus those of each instructor folder; NoChecksError if none."""
    found = []
    try:
        checks_file(notebook)
        found.append(CheckModule(load_checks(notebook), list_checks(notebook), "official"))
    except NoChecksError:
        pass
    for folder in checks:
        try:
            checks_file(notebook, folder)
        except NoChecksError:
            continue
        module = load_checks(notebook, folder)
        found.append(
            CheckModule(module, list_checks(notebook, folder), "instructor", bool(getattr(module, "HIDDEN", False)))
        )
    if not found:
        where = ", ".join(["mlc_lab.grading.checks", *checks])
        raise NoChecksError(
            f"no official checks for notebook {notebook!r}: expected module {module_name(notebook)!r} in {where}"
        )
    if not any(m.names for m in found):
        raise NoChecksError(f"{module_name(notebook)} defines no check_* functions")
    return found


def student_cells(nb: Any) -> list[str]:
    return [
        c.source for c in nb.cells if c.cell_type == "code" and CHECK_TAG not in c.get("metadata", {}).get("tags", [])
    ]


def _missing(cells: list[str], outcomes: list[CellOutcome], dead: Callable[[], Any]) -> Callable[[str], str]:
    def explain(name: str) -> str:
        index = integrity.defining_cell(cells, name)
        if index is None:
            return f"`{name}` is not defined: no cell defines it"
        where = f"cell {index + 1} (`{cells[index].strip().splitlines()[0][:50]}`)" if cells[index].strip() else ""
        outcome = outcomes[index]
        if not outcome.ran:
            why = dead()
            return f"`{name}` is not defined: {where}, which defines it, was not run" + (f" ({why})" if why else "")
        if outcome.error:
            return f"`{name}` is not defined: {where}, which defines it, failed: {outcome.error}"
        return f"`{name}` is not defined although {where} ran: does it define `{name}` at top level?"

    return explain


def grade_notebook(
    path: str | os.PathLike[str],
    checks: str | os.PathLike[str] | Sequence[str] | None = None,
    timeout: float | None = None,
    options: Options | None = None,
    content: bytes | None = None,
    student: str = "",
) -> NotebookReport:
    """Grade one notebook (from `content`, the snapshot of its bytes, when given).

    No files are guarded here: `grade` verifies the package and the class's files around each call.
    """
    options = _options(options, checks, timeout)
    path = Path(path)
    seed = options.seed if options.seed is not None else secrets.randbits(32)
    report = NotebookReport(path.resolve(), module_name(path.stem), seed=seed, student=student)
    start = time.monotonic()
    try:
        modules = check_modules(path.stem, options.checks)
        report.checks_module = ", ".join(m.module.__name__ for m in modules)
    except NoChecksError as exc:
        report.error = str(exc)
        return report
    with cleanup.temporary_folder("mlc-lab-grade-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        copy = work / path.name
        try:
            copy.write_bytes(content if content is not None else path.read_bytes())
            cells = student_cells(read_notebook(copy))
        except (NotebookFormatError, OSError, UnicodeDecodeError, ValueError) as exc:
            report.error = f"unreadable notebook: {str(exc).replace(str(copy), path.name)}"
            return report
        except Exception as exc:  # noqa: BLE001 - nbformat's own errors (truncated JSON, bad schema)
            report.error = f"unreadable notebook ({type(exc).__name__}): {str(exc).splitlines()[0][:200]}"
            return report
        refs = integrity.inspect_cells(cells)
        report.flags = list(refs.dynamic)
        server = zygote.server_for(PACKAGE_DIR, base_environment())
        with Sandbox(cells, work, options.limits, server=server) as box:
            outcomes = box.run_cells()
            report.cell_errors = [f"cell {o.index + 1}: {o.error}" for o in outcomes if o.error]
            if box.dead is not None:
                report.cell_errors.append(str(box.dead))
            student_view = RemoteStudent(box, _missing(cells, outcomes, lambda: box.dead))
            for k, cm in enumerate(modules):
                for j, name in enumerate(cm.names):
                    fn = getattr(cm.module, name)
                    g = Grading(student_view, np.random.default_rng([seed, k, j]), hidden=cm.hidden)
                    result = evaluate(fn, g, name, cm.source)
                    _flag(result, refs, getattr(fn, "forbids", ()), g.origins, report.flags)
                    report.results.append(result)
            report.output_truncated = box.output_truncated
    report.seconds = time.monotonic() - start
    return report


def _flag(
    result: CheckResult, refs: integrity.References, forbids: Sequence[str], origins: dict, flags: list[str]
) -> None:
    """Zero a check whose answer comes from the library (or when the whole notebook is flagged)."""
    reasons = integrity.delegations(refs, forbids)
    for name, info in origins.items():
        module = str(info.get("module", ""))
        if module == "mlc_lab" or module.startswith("mlc_lab."):
            reasons.append(f"`{name}` is {module}'s own {info.get('kind', 'object')}, not yours")
    reasons += flags
    if reasons:
        result.flagged, result.passed, result.earned = True, False, 0.0
        result.message = "integrity: " + "; ".join(dict.fromkeys(reasons))


def _options(options: Options | None, checks: Any, timeout: float | None) -> Options:
    options = options or Options()
    if checks is not None:
        folders = [checks] if isinstance(checks, str | os.PathLike) else list(checks)
        options = Options(options.limits, tuple(str(Path(f).resolve()) for f in folders), options.seed, options.guard)
    if timeout is not None:
        limits = options.limits
        options = Options(
            Limits(float(timeout), float(timeout), limits.memory_mb, limits.output_kb, limits.file_mb, limits.grace),
            options.checks,
            options.seed,
            options.guard,
        )
    return options


# -- a class: many submissions ----------------------------------------------------------------------


@dataclass
class _Batch:
    """The submissions of one run with the snapshots that guard them."""

    targets: list[Path]
    root: Path | None
    contents: dict[Path, bytes] = field(default_factory=dict)
    stats: dict[Path, tuple[int, ...] | None] = field(default_factory=dict)

    def snapshot(self) -> None:
        """The bytes of every submission (and their status), before any of them runs."""
        for p in self.targets:
            status = _status(p)
            try:
                self.contents[p] = p.read_bytes()
            except OSError:
                continue
            self.stats[p] = status

    def student(self, path: Path) -> str:
        if self.root is None:
            return path.resolve().parent.name
        where = path.resolve().parent
        return where.relative_to(self.root).as_posix() if where.is_relative_to(self.root) else str(where)

    def changed_submissions(self) -> list[Path]:
        """Submissions whose file changed since the snapshot (restored unless in a checkout). A file is
        read again only when its status moved: a write always changes its ctime, which no call resets."""
        changed = []
        for p, data in self.contents.items():
            status = _status(p)  # before the read: a write after it moves the status again
            if status is not None and status == self.stats.get(p):
                continue
            try:
                now = p.read_bytes()
            except OSError:
                now = None
            self.stats[p] = status
            if now != data:
                if not integrity.is_checkout(p):  # never undo someone's edit in a working tree
                    p.write_bytes(data)  # restore the victim's file
                    self.stats[p] = None  # read it again next time
                changed.append(p)
                self.contents[p] = data if not integrity.is_checkout(p) else (now or b"")
        return changed


def _status(path: Path) -> tuple[int, ...] | None:
    """What a change to a file moves: inode, size, mtime and ctime (None when it is gone)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _targets(path: Path, checks: Sequence[str]) -> list[Path]:
    if not path.is_dir():
        return [path]
    found = []
    for nb in find_notebooks(path, strict=False):
        try:
            check_modules(nb.stem, checks)
            found.append(nb)
        except NoChecksError:
            pass
    return found


def grade(
    path: str | os.PathLike[str],
    checks: str | os.PathLike[str] | Sequence[str] | None = None,
    timeout: float | None = None,
    options: Options | None = None,
    jobs: int = 1,
    hide_hidden: bool = False,
) -> GradeReport:
    """Grade a notebook, or every notebook with checks in a folder; `jobs` processes in parallel."""
    options = _options(options, checks, timeout)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    jobs = max(1, int(jobs))
    if jobs == 1 or not path.is_dir():
        _start_zygote()
    batch = _Batch(_targets(path, options.checks), path.resolve() if path.is_dir() else None)
    batch.snapshot()
    with tempfile.TemporaryDirectory(prefix="mlc-lab-guard-") as keep:
        guards = [integrity.Guard(root, Path(keep) / str(i)) for i, root in enumerate(options.guarded())]
        reports = _run_all(batch, options, guards, jobs)
    cleanup.drain()
    return GradeReport(reports, hide_hidden=hide_hidden)


def _start_zygote() -> None:
    """Start this grading process's zygote now: its imports run while we list and read notebooks.
    (Also a pool's initializer, which must not raise: the first sandbox tries again, and reports.)"""
    try:
        zygote.server_for(PACKAGE_DIR, base_environment()).start()
    except OSError:
        pass


def _one(path: Path, options: Options, content: bytes | None, student: str) -> NotebookReport:
    return grade_notebook(path, options=options, content=content, student=student)


def _verify(report: NotebookReport, batch: _Batch, guards: list[integrity.Guard]) -> bool:
    """Check the guarded files after a submission ran; flag it and restore when they changed."""
    tampered = []
    for guard in guards:
        changed = guard.changes()
        if changed:
            guard.restore(changed)
            done = "restored" if guard.restores else "not restored: a development checkout, see git diff"
            tampered.append(f"changed files of {guard.root.name}/ ({', '.join(changed[:3])}): {done}")
    victims = batch.changed_submissions()
    if victims:
        tampered.append(f"changed other submissions ({', '.join(p.name for p in victims[:3])}): restored")
    for reason in tampered:
        report.flags.append(reason)
        for r in report.results:
            r.flagged, r.passed, r.earned = True, False, 0.0
            r.message = "integrity: " + reason
    return bool(tampered)


def _pool_context() -> multiprocessing.context.BaseContext:
    """Fork the grading processes when that is safe (Linux, no other thread here but the folder
    remover, which holds no lock a child needs): they start with the grader already imported (a
    spawned one spends ~1 s importing it again); spawn otherwise."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.name != cleanup.THREAD]
    if "fork" in multiprocessing.get_all_start_methods() and not others:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _run_all(batch: _Batch, options: Options, guards: list[integrity.Guard], jobs: int) -> list[NotebookReport]:
    def task(p: Path) -> tuple[Path, Options, bytes | None, str]:
        return p, options, batch.contents.get(p), batch.student(p)

    reports: dict[Path, NotebookReport] = {}
    if jobs == 1 or len(batch.targets) <= 1:
        for p in batch.targets:
            reports[p] = _one(*task(p))
            _verify(reports[p], batch, guards)
        return [reports[p] for p in batch.targets]
    suspects: list[Path] = []
    context = _pool_context()
    if context.get_start_method() == "fork":
        preload_readers()  # once here rather than once in every grading process
    with concurrent.futures.ProcessPoolExecutor(jobs, context, initializer=_start_zygote) as pool:
        futures = {pool.submit(_one, *task(p)): p for p in batch.targets}
        for future in concurrent.futures.as_completed(futures):
            p = futures[future]
            try:
                reports[p] = future.result()
            except Exception as exc:  # noqa: BLE001 - one broken grading process never stops the batch
                reports[p] = NotebookReport(p.resolve(), module_name(p.stem), error=f"grading failed: {exc}")
            if _verify(reports[p], batch, guards):
                suspects += [q for q in futures.values() if q not in suspects]  # who did it is unclear
    for p in suspects:  # regrade one at a time: now a change is the doing of the submission just graded
        reports[p] = _one(*task(p))
        _verify(reports[p], batch, guards)
    return [reports[p] for p in batch.targets]
