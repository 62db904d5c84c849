"""Grading a class: instructor checks, partial credit, hidden cases, broken submissions, exports,
and parallel grading giving the same scores as serial grading. Synthetic `toy` notebooks."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlc_lab.cli import main

DATA = Path(__file__).parent / "grading_data"
CHECKS = DATA / "checks"
INSTRUCTOR = DATA / "instructor"


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("class")
    for student, source in [("alice", "solutions"), ("bob", "exercises")]:
        (root / student).mkdir()
        shutil.copy(DATA / source / "toy.md", root / student / "toy.md")
    (root / "carol").mkdir()  # add right for non-negative numbers only: partial credit
    text = (DATA / "solutions" / "toy.md").read_text().replace("return a + b", "return abs(a) + abs(b)")
    (root / "carol" / "toy.md").write_text(text)
    (root / "dave").mkdir()  # a truncated .ipynb
    (root / "dave" / "toy.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "x = ')
    (root / "erin").mkdir()  # a header whose YAML does not parse
    (root / "erin" / "toy.md").write_text("---\njupytext: [unclosed\n---\n\n```{code-cell} ipython3\nx = 1\n```\n")
    return root


def run_cli(klass: Path, out: Path, *extra: str) -> tuple[int, str]:
    out.mkdir(exist_ok=True)
    args = ["grade", str(klass), "--checks", str(CHECKS), "--checks", str(INSTRUCTOR), "--seed", "7"]
    args += ["--csv", str(out / "grades.csv"), "--gradebook", str(out / "gradebook.csv")]
    args += ["--json-dir", str(out / "json"), "--no-package-check", *extra]
    return main(args), ""


def rows(path: Path) -> dict[str, dict[str, str]]:
    return {r["student"]: r for r in csv.DictReader(path.open())}


def test_parallel_class_grading_exports_and_feedback(klass: Path, tmp_path: Path, capsys) -> None:
    code, _ = run_cli(klass, tmp_path / "parallel", "--jobs", "2", "--hide-hidden")
    text = capsys.readouterr().out
    assert code == 1
    grades = rows(tmp_path / "parallel" / "grades.csv")
    assert set(grades) == {"alice", "bob", "carol", "dave", "erin"}  # broken notebooks have rows too
    assert grades["alice"]["earned"] == grades["alice"]["points"] == "7"  # 4 official + 3 instructor points
    assert grades["bob"]["earned"] == "0"
    # carol: add fails the drawn negative cases of the official check and 2 of 4 hidden cases
    assert 0 < float(grades["carol"]["earned"]) < 7 and "check_add_negative" in grades["carol"]["failed_checks"]
    assert "unreadable notebook" in grades["dave"]["error"]
    assert "unreadable YAML header" in grades["erin"]["error"]

    # --hide-hidden: the instructor's cases show no input, expected or got; the official ones do
    assert "a hidden case failed" in text and "2 of 4 hidden cases failed" in text
    assert "add(-1, -1)" not in text and "add(-3, 2)" not in text
    assert "add(2, 3): not implemented yet" in text
    report = json.loads((tmp_path / "parallel" / "json" / "carol__toy.json").read_text())
    hidden = next(r for r in report["results"] if r["name"] == "check_add_negative")
    assert hidden["earned"] == 1.5 and hidden["points"] == 3
    assert all(c["input"] == "(hidden case)" for c in hidden["cases"])
    assert hidden["message"] == "2 of 4 hidden cases failed"
    assert sorted(p.name for p in (tmp_path / "parallel" / "json").iterdir()) == [
        f"{s}__toy.json" for s in ("alice", "bob", "carol", "dave", "erin")
    ]

    with (tmp_path / "parallel" / "gradebook.csv").open() as f:
        book = list(csv.reader(f))
    assert book[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and book[0][-1] == "Total Score"
    assert book[1][0] == "Points Possible" and book[1][-1] == "7"
    assert {r[0]: r[-1] for r in book[2:]}["alice"] == "7"

    # The same class graded one notebook at a time, with the same seed: the same scores.
    run_cli(klass, tmp_path / "serial")
    capsys.readouterr()
    serial = rows(tmp_path / "serial" / "grades.csv")
    assert {s: (r["earned"], r["error"]) for s, r in serial.items()} == {
        s: (r["earned"], r["error"]) for s, r in grades.items()
    }


def test_without_hide_hidden_the_instructor_sees_every_case(klass: Path, tmp_path: Path, capsys) -> None:
    solo = tmp_path / "carol"
    shutil.copytree(klass / "carol", solo)
    main(["grade", str(solo / "toy.md"), "--checks", str(CHECKS), "--checks", str(INSTRUCTOR), "--no-package-check"])
    text = capsys.readouterr().out
    assert "add(-1, -1): wrong answer" in text and "expected: -2" in text and "got:      2" in text


def test_benchmark_grades_a_class_serially_and_in_parallel_with_the_same_scores() -> None:
    """benchmarks/grading.py on a class of 2 (a solution and an untouched exercise): it runs the real
    `mlc-lab grade` both ways and reports the ratio; a run whose scores differ would exit 1."""
    script = Path(__file__).parents[1] / "benchmarks" / "grading.py"
    done = subprocess.run(
        [sys.executable, str(script), "--count", "2", "--repeats", "1", "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["same_scores"] and result["graded"] == 2 and result["notebooks_with_errors"] == []
    assert [run["jobs"] for run in result["runs"]] == [1, 2]
    assert result["ratio_to_ideal"] > 0 and result["serial_cpu_s"] > 0
    assert 0 < result["mean_score"] < result["points"]  # the solutions earn every point, the exercises none
    assert result["mean_score"] == result["points"] / 2
