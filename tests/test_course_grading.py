"""The course's own exercises: every solution passes every official check, every untouched exercise
fails every check with a message a student can act on."""

from pathlib import Path

import pytest

from mlc_lab.grading import grade_notebook, list_checks
from mlc_lab.grading.grader import Options

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = sorted((ROOT / "exercises").glob("*.md"))
SAFE = Options(guard=())  # others edit the package while tests run: never guard (or flag) it here


def test_every_exercise_has_a_solution_and_checks():
    assert EXERCISES, "no exercises found"
    for exercise in EXERCISES:
        assert (ROOT / "solutions" / exercise.name).exists(), f"{exercise.name} has no solution"
        assert list_checks(exercise.stem), f"{exercise.name} has no official checks"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_solution_passes_all_checks(exercise):
    report = grade_notebook(ROOT / "solutions" / exercise.name, options=SAFE)
    assert report.error is None, report.error
    failed = {r.name: r.message for r in report.results if not r.passed}
    assert not failed, failed
    assert not report.flags, report.flags
    assert report.earned == report.points > 0
    assert report.total == len(list_checks(exercise.stem))


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda p: p.stem)
def test_untouched_exercise_fails_every_check_readably(exercise):
    report = grade_notebook(exercise, options=SAFE)
    assert report.error is None, report.error
    assert report.total == len(list_checks(exercise.stem)) and report.passed == 0
    for result in report.results:
        assert "NotImplementedError" in result.message or "not implemented" in result.message, result.message
        assert "Traceback" not in result.message, "messages should be one readable line, not a traceback"
