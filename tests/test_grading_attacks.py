"""Attacks on the grader, each a tampering notebook in tests/grading_data: none may change a verdict.

Every attack notebook leaves the exercise unsolved (or solves it by a forbidden route), so every
check must come out FAIL or FLAG; files the attacks target must be unchanged afterwards; processes
they start must be gone. Related attacks share one grading run (a process per notebook, ~1 s each).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import mlc_lab
from mlc_lab.grading import grade
from mlc_lab.grading.grader import Options
from mlc_lab.grading.sandbox import Limits

DATA = Path(__file__).parent / "grading_data"
CHECKS = DATA / "checks"
PACKAGE = Path(mlc_lab.__file__).resolve().parent


def fill(folder: Path, **values: str) -> None:
    """Replace @@NAME@@ placeholders (absolute paths only known at test time) in every notebook."""
    for nb in folder.rglob("*.md"):
        text = nb.read_text()
        for key, value in values.items():
            text = text.replace(f"@@{key}@@", value)
        nb.write_text(text)


def by_student(report) -> dict[str, object]:
    return {Path(n.path).parent.name: n for n in report.notebooks}


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory):
    """One parallel grading run over every attack in tests/grading_data/attacks."""
    root = tmp_path_factory.mktemp("attacks")
    shutil.copytree(DATA / "attacks", root / "class")
    pidfile = root / "pids.txt"
    fill(
        root / "class",
        SOLUTION=str(DATA / "solutions" / "toy.md"),
        PIDFILE=str(pidfile),
        GRADER_HOME=os.environ.get("HOME", "/root"),
    )
    os.environ["MLC_LAB_TEST_SECRET"] = "the grader's secret"
    try:
        report = grade(root / "class", checks=CHECKS, options=Options(guard=()), jobs=2)
    finally:
        del os.environ["MLC_LAB_TEST_SECRET"]
    return report, pidfile


ATTACKS = [
    "shadow_package",
    "monkeypatch",
    "input_transformer",
    "frame_inspection",
    "exec_solution",
    "environment",
    "escape_processes",
    "patch_interpret",
    "delegation",
]


def test_every_attack_notebook_was_graded(attacked) -> None:
    report, _ = attacked
    notebooks = by_student(report)
    assert set(ATTACKS) <= set(notebooks), sorted(notebooks)
    for name in ATTACKS:
        assert notebooks[name].error is None, (name, notebooks[name].error)
        assert notebooks[name].results, name
    # no --seed: every notebook's inputs are drawn from a seed of its own, chosen when it is graded
    seeds = [n.seed for n in notebooks.values()]
    assert None not in seeds and len(set(seeds)) == len(seeds), seeds


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_does_not_pass(attacked, attack: str) -> None:
    notebook = by_student(attacked[0])[attack]
    if attack == "delegation":  # tile_features is honestly solved; the two delegations are flagged
        verdicts = {r.name: (r.passed, r.flagged) for r in notebook.results}
        assert verdicts == {
            "check_tile_splits": (False, True),
            "check_hill_climb": (False, True),
            "check_cost_model_feature": (True, False),
        }, notebook.results
        messages = {r.name: r.message for r in notebook.results}
        assert "factorizations" in messages["check_tile_splits"]
        assert "SimulatedAnnealing" in messages["check_hill_climb"]
        return
    for result in notebook.results:
        assert not result.passed, (attack, result)
    # A forged answer can only be right where it happens to be right: the inputs are drawn per run.
    assert notebook.earned <= 0.25 * notebook.points, (attack, notebook.earned, notebook.results)


def test_monkeypatched_probe_scores_only_the_case_it_hardcodes(attacked) -> None:
    notebook = by_student(attacked[0])["monkeypatch"]
    add = next(r for r in notebook.results if r.name == "check_add")
    assert add.cases and not add.passed
    # only a case whose answer happens to be 5, like add(2, 3), can pass; the drawn inputs have other sums
    assert all(c.expected == "5" for c in add.cases if c.passed), add.cases
    assert any(c.expected != "5" for c in add.cases)


def test_running_the_solution_is_flagged(attacked) -> None:
    notebook = by_student(attacked[0])["exec_solution"]
    assert notebook.flags and any("exec" in f or "solutions" in f for f in notebook.flags), notebook.flags
    assert all(r.flagged and r.earned == 0 for r in notebook.results)


def test_a_failing_import_is_reported_as_itself(attacked) -> None:
    notebook = by_student(attacked[0])["missing_module"]
    assert any("ModuleNotFoundError" in e and "not_a_real_module_xyz" in e for e in notebook.cell_errors)
    add = next(r for r in notebook.results if r.name == "check_add")
    assert "ModuleNotFoundError" in add.message and "not_a_real_module_xyz" in add.message, add.message
    assert "cell 1" in add.message


def test_processes_started_by_a_notebook_do_not_outlive_it(attacked) -> None:
    _, pidfile = attacked
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) >= 2, pids  # the new-session child and the double-forked daemon
    time.sleep(0.2)
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    assert not alive, f"still running after grading: {alive}"


def test_tampering_with_files_changes_no_verdict_and_no_file(tmp_path: Path) -> None:
    """A attacks: rewrites the package it imports, plants a lenient `toy` checks module, rewrites the
    instructor's checks by absolute path and overwrites B's submission. B (a correct solution) and a
    later student C (untouched exercise) are graded as if A never ran; every file is restored."""
    checks = tmp_path / "checks"
    shutil.copytree(CHECKS, checks)
    original_checks = (checks / "toy.py").read_text()
    cls = tmp_path / "class"
    shutil.copytree(DATA / "tamper", cls)
    (cls / "b_victim").mkdir()
    shutil.copy(DATA / "solutions" / "toy.md", cls / "b_victim" / "toy.md")
    (cls / "c_later").mkdir()
    shutil.copy(DATA / "exercises" / "toy.md", cls / "c_later" / "toy.md")
    fill(cls, CHECKS=str(checks), VICTIM=str(cls / "b_victim" / "toy.md"))
    victim_before = (cls / "b_victim" / "toy.md").read_bytes()

    report = grade(cls, checks=checks, options=Options(guard=(str(checks),)))
    notebooks = by_student(report)
    attacker, victim, later = notebooks["a_attacker"], notebooks["b_victim"], notebooks["c_later"]
    assert all(not r.passed for r in attacker.results) and attacker.flags, attacker.flags
    assert any("changed files of checks/" in f for f in attacker.flags)
    assert any("other submissions" in f for f in attacker.flags)
    assert victim.ok and victim.earned == victim.points, victim.results
    assert later.passed == 0 and not later.flags, later.results
    assert (cls / "b_victim" / "toy.md").read_bytes() == victim_before
    assert (checks / "toy.py").read_text() == original_checks
    assert not (PACKAGE / "grading" / "checks" / "toy.py").exists()  # it wrote into its private copy
    assert "SystemExit" not in (PACKAGE / "grading" / "session.py").read_text()


def test_limits_bound_a_whole_notebook(tmp_path: Path) -> None:
    """A SIGINT-ignoring loop is killed and labelled a timeout; slow cells share one budget; a flood
    of output is cut; memory is capped. Budgets: 4 s of cells, 4 s of checks, 1 s grace, 2 GiB."""
    shutil.copytree(DATA / "limits", tmp_path / "class")
    limits = Limits(timeout=4, check_timeout=4, grace=1, output_kb=64, memory_mb=2048)
    start = time.monotonic()
    report = grade(tmp_path / "class", checks=CHECKS, options=Options(limits=limits, guard=()), jobs=2)
    elapsed = time.monotonic() - start
    notebooks = by_student(report)

    looping = notebooks["ignores_sigint"]
    assert all(not r.passed for r in looping.results)
    assert any("timeout" in e and "ignored the interrupt" in e for e in looping.cell_errors), looping.cell_errors
    assert all("timeout" in r.message for r in looping.results), looping.results

    slow = notebooks["slow_cells"]
    assert any("timeout" in e and "interrupted" in e for e in slow.cell_errors), slow.cell_errors
    verdicts = {r.name: r.passed for r in slow.results}
    assert verdicts["check_add"] is True  # defined before the time ran out
    assert verdicts["check_total"] is False  # the cell after the timeout never ran
    assert slow.seconds < 4 + 1 + 4 + 3, slow.seconds  # not 5 cells x timeout

    flood = notebooks["output_flood"]
    assert flood.output_truncated
    assert {r.name: r.passed for r in flood.results}["check_add"] is True
    hog = notebooks["memory_hog"]  # 3 GiB asked, 2 GiB allowed: the cell fails, the grader does not
    assert "cell 2: MemoryError" in hog.cell_errors, hog.cell_errors
    assert {r.name: r.passed for r in hog.results}["check_add"] is True
    assert elapsed < 60, elapsed
