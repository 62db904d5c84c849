"""Grading results: per check (points, cases), per notebook, for a class; as text, JSON and CSV."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlc_lab.grading.session import Case

#: Failed cases shown per check in the text report (the JSON report has them all).
SHOWN_CASES = 3


@dataclass
class CheckResult:
    """One check: points earned of `points`, its cases, and why it failed (or was flagged)."""

    name: str
    passed: bool
    message: str = ""
    points: float = 1.0
    earned: float = 0.0
    cases: list[Case] = field(default_factory=list)
    flagged: bool = False
    source: str = "official"

    @property
    def cases_passed(self) -> int:
        return sum(c.passed for c in self.cases)


@dataclass
class NotebookReport:
    """The checks of one notebook. `error` is set when the notebook could not be graded at all."""

    path: Path
    checks_module: str
    results: list[CheckResult] = field(default_factory=list)
    error: str | None = None
    cell_errors: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    seed: int | None = None
    seconds: float = 0.0
    output_truncated: bool = False
    student: str = ""

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def earned(self) -> float:
        return round(sum(r.earned for r in self.results), 6)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def ok(self) -> bool:
        return self.error is None and self.total > 0 and self.passed == self.total

    @property
    def score(self) -> float:
        return self.earned / self.points if self.points else 0.0

    def to_dict(self, hide_hidden: bool = False) -> dict[str, Any]:
        results = []
        for r in self.results:
            entry = asdict(r)
            entry["cases"] = [_case_dict(c, hide_hidden) for c in r.cases]
            entry["message"] = message(r, hide_hidden)
            results.append(entry)
        return {
            "path": str(self.path),
            "student": self.student,
            "checks_module": self.checks_module,
            "passed": self.passed,
            "total": self.total,
            "earned": self.earned,
            "points": self.points,
            "score": self.score,
            "error": self.error,
            "cell_errors": self.cell_errors,
            "flags": self.flags,
            "seed": self.seed,
            "seconds": round(self.seconds, 2),
            "output_truncated": self.output_truncated,
            "results": results,
        }


def message(result: CheckResult, hide_hidden: bool) -> str:
    """A check's message; with `hide_hidden`, a failure among hidden cases says only how many failed."""
    hidden = [c for c in result.cases if c.hidden]
    if not hide_hidden or not hidden or result.passed or result.flagged:
        return result.message
    failed = sum(not c.passed for c in hidden)
    return f"{failed} of {len(hidden)} hidden cases failed"


def _case_dict(case: Case, hide_hidden: bool) -> dict[str, Any]:
    if hide_hidden and case.hidden:
        return {"input": "(hidden case)", "passed": case.passed, "hidden": True}
    return asdict(case)


@dataclass
class GradeReport:
    notebooks: list[NotebookReport] = field(default_factory=list)
    hide_hidden: bool = False

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
            "notebooks": [n.to_dict(self.hide_hidden) for n in self.notebooks],
        }

    def write_json_reports(self, folder: str | os.PathLike[str]) -> list[Path]:
        """One JSON report per submission, named after its student folder and notebook."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for n in self.notebooks:
            stem = "__".join(p for p in [*(n.student or ".").split("/"), Path(n.path).stem] if p not in ("", "."))
            target = folder / f"{stem}.json"
            target.write_text(json.dumps(n.to_dict(self.hide_hidden), indent=2), encoding="utf-8")
            written.append(target)
        return written

    def write_csv(self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
        """One row per notebook: a class's submissions folder becomes a gradebook (errors included)."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(
                [
                    "student",
                    "notebook",
                    "earned",
                    "points",
                    "score",
                    "passed",
                    "total",
                    "failed_checks",
                    "flags",
                    "error",
                ]
            )
            for n in self.notebooks:
                failed = ";".join(r.name for r in n.results if not r.passed)
                out.writerow(
                    [
                        n.student or _student(n.path, root),
                        Path(n.path).stem,
                        f"{n.earned:g}",
                        f"{n.points:g}",
                        f"{n.score:.3f}",
                        n.passed,
                        n.total,
                        failed,
                        "; ".join(n.flags),
                        n.error or "",
                    ]
                )

    def write_gradebook(self, path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
        """A Canvas-style gradebook import: one row per student, one column per notebook (points),
        a "Points Possible" row first. Gradescope's score upload takes the same file (SID column)."""
        students: dict[str, dict[str, float]] = {}
        possible: dict[str, float] = {}
        for n in self.notebooks:
            who = n.student or _student(n.path, root)
            column = Path(n.path).stem
            students.setdefault(who, {})[column] = n.earned
            possible[column] = max(possible.get(column, 0.0), n.points)
        columns = sorted(possible)
        with open(path, "w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *columns, "Total Score"])
            out.writerow(
                [
                    "Points Possible",
                    "",
                    "",
                    "",
                    "",
                    *(f"{possible[c]:g}" for c in columns),
                    f"{sum(possible.values()):g}",
                ]
            )
            for who in sorted(students):
                row = students[who]
                marks = [f"{row[c]:g}" if c in row else "" for c in columns]
                out.writerow([who, who, who, who, "", *marks, f"{sum(row.values()):g}"])

    def format(self, width: int = 100) -> str:
        """Per notebook: each check with its points, each failed case with input/expected/got."""
        out: list[str] = []
        for nb in self.notebooks:
            out.append(f"== {nb.path}  (checks: {nb.checks_module})")
            if nb.error:
                out.append(f"   ERROR: {nb.error}")
            for flag in nb.flags:
                out.append(f"   FLAGGED: {flag}")
            for err in nb.cell_errors:
                out.append(f"   cell error: {_clip(err, width - 15)}")
            name_w = max([len(r.name) for r in nb.results] + [5])
            for r in nb.results:
                verdict = "PASS" if r.passed else "FLAG" if r.flagged else "FAIL"
                pts = f"{r.earned:g}/{r.points:g}"
                msg = _clip(message(r, self.hide_hidden), max(width - name_w - 20, 30))
                out.append(f"   {r.name:<{name_w}}  {verdict}  {pts:>7}  {msg}".rstrip())
                failed = [c for c in r.cases if not c.passed]
                for case in failed[:SHOWN_CASES]:
                    out.extend(_format_case(case, self.hide_hidden, width))
                if len(failed) > SHOWN_CASES:
                    out.append(f"      ... and {len(failed) - SHOWN_CASES} more failed cases (see --json)")
            if nb.output_truncated:
                out.append("   note: the notebook's output was over the limit and was cut")
            out.append(
                f"   score: {nb.earned:g}/{nb.points:g} points ({100 * nb.score:.0f}%), {nb.passed}/{nb.total} checks"
            )
        if len(self.notebooks) > 1:
            earned = sum(n.earned for n in self.notebooks)
            points = sum(n.points for n in self.notebooks)
            pct = 100 * earned / points if points else 0.0
            out.append(f"total: {earned:g}/{points:g} points ({pct:.0f}%) over {len(self.notebooks)} notebooks")
        if not self.notebooks:
            out.append("no notebooks with official checks found")
        return "\n".join(out)


def _format_case(case: Case, hide_hidden: bool, width: int) -> list[str]:
    if hide_hidden and case.hidden:
        return ["      - a hidden case failed"]
    lines = [f"      - {_clip(case.input, width - 8)}: {_clip(case.message, width - 20)}"]
    if case.expected:
        lines.append(f"          expected: {_clip(case.expected, width - 20)}")
    if case.got:
        lines.append(f"          got:      {_clip(case.got, width - 20)}")
    return lines


def _clip(text: str, room: int) -> str:
    text = " ".join(str(text).split())
    room = max(room, 20)
    return text if len(text) <= room else text[: room - 3] + "..."


def _student(path: Path, root: str | os.PathLike[str] | None) -> str:
    where = Path(path).resolve().parent
    if root is None:
        return where.name
    root = Path(root).resolve()
    return (where.relative_to(root).as_posix() or ".") if where.is_relative_to(root) else str(where)
