"""Bulk grading of a real chapter: a class's submissions folder becomes a CSV gradebook, broken
submissions included."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

from mlc_lab.grading import list_checks, load_checks

ROOT = Path(__file__).resolve().parent.parent


def test_folder_of_submissions_to_csv(tmp_path):
    submissions = tmp_path / "submissions"
    (submissions / "alice").mkdir(parents=True)
    (submissions / "bob").mkdir()
    shutil.copy(ROOT / "solutions" / "01_ir.md", submissions / "alice" / "01_ir.md")  # all correct
    shutil.copy(ROOT / "exercises" / "01_ir.md", submissions / "bob" / "01_ir.md")  # untouched
    (submissions / "carol").mkdir()  # a truncated notebook must not stop the batch
    (submissions / "carol" / "01_ir.ipynb").write_text('{"cells": [')
    gradebook = tmp_path / "grades.csv"
    result = subprocess.run(
        [sys.executable, "-m", "mlc_lab.cli", "grade", str(submissions), "--csv", str(gradebook), "--no-package-check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stdout + result.stderr  # bob's checks fail
    rows = {r["student"]: r for r in csv.DictReader(gradebook.open())}
    assert set(rows) == {"alice", "bob", "carol"}
    names = list_checks("01_ir")  # the chapter's checks as shipped (exercises gain checks over time)
    points = sum(getattr(load_checks("01_ir"), name).points for name in names)
    assert rows["alice"]["passed"] == rows["alice"]["total"] == str(len(names)) and rows["alice"]["failed_checks"] == ""
    assert float(rows["alice"]["earned"]) == float(rows["alice"]["points"]) == points
    assert rows["carol"]["error"].startswith("unreadable notebook") and rows["carol"]["total"] == "0"
    assert rows["bob"]["passed"] == "0" and rows["bob"]["failed_checks"].split(";") == names
    assert rows["alice"]["notebook"] == "01_ir" and rows["alice"]["score"] == "1.000"
