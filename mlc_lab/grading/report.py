"""Grading results: per check, per notebook, and for a whole folder; as a table or JSON."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""


@dataclass
class NotebookReport:
    """The checks of one notebook. `error` is set when the notebook could not be graded at all."""

    path: Path
    checks_module: str
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def ok(self) -> bool:
        return self.error is None and self.total > 0 and self.passed == self.total

    @property
    def score(self) -> float:
        return self.passed / self.total if self.total else 0.0


@dataclass
class GradeReport:
    notebooks: list[NotebookReport] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(n.passed for n in self.notebooks)

    @property
    def total(self) -> int:
        return sum(n.total for n in self.notebooks)

    @property
    def ok(self) -> bool:
        """True only when there was something to grade and every check of every notebook passed."""
        return bool(self.notebooks) and all(n.ok for n in self.notebooks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "passed": self.passed,
            "total": self.total,
            "notebooks": [
                {
                    "path": str(n.path),
                    "checks_module": n.checks_module,
                    "passed": n.passed,
                    "total": n.total,
                    "score": n.score,
                    "error": n.error,
                    "results": [asdict(r) for r in n.results],
                }
                for n in self.notebooks
            ],
        }

    def write_csv(self, path: str | os.PathLike[str], root: str | os.PathLike[str]) -> None:
        """One row per notebook: student (its folder under `root`), notebook, passed, total, score,
        the failed checks and any error: a class's submissions folder becomes a gradebook."""
        import csv

        root = Path(root).resolve()
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["student", "notebook", "passed", "total", "score", "failed_checks", "error"])
            for n in self.notebooks:
                where = Path(n.path).resolve().parent
                student = where.relative_to(root).as_posix() if where.is_relative_to(root) else str(where)
                failed = ";".join(r.name for r in n.results if not r.passed)
                out.writerow(
                    [student or ".", Path(n.path).stem, n.passed, n.total, f"{n.score:.3f}", failed, n.error or ""]
                )

    def format(self, width: int = 100) -> str:
        """A plain-text table per notebook, a score line each, and a total when there are several."""
        out: list[str] = []
        for nb in self.notebooks:
            out.append(f"== {nb.path}  (checks: {nb.checks_module})")
            if nb.error:
                out.append(f"   ERROR: {nb.error}")
            name_w = max([len(r.name) for r in nb.results] + [5])
            for r in nb.results:
                msg = " ".join(r.message.split())
                room = max(width - name_w - 12, 20)
                msg = msg if len(msg) <= room else msg[: room - 3] + "..."
                out.append(f"   {r.name:<{name_w}}  {'PASS' if r.passed else 'FAIL'}  {msg}".rstrip())
            out.append(f"   score: {nb.passed}/{nb.total} ({100 * nb.score:.0f}%)")
        if len(self.notebooks) > 1:
            pct = 100 * self.passed / self.total if self.total else 0.0
            out.append(f"total: {self.passed}/{self.total} ({pct:.0f}%) over {len(self.notebooks)} notebooks")
        if not self.notebooks:
            out.append("no notebooks with official checks found")
        return "\n".join(out)
