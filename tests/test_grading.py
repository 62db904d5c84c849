"""The grader and the nbval `.md` collection, on synthetic notebooks (tests/grading_data), not real chapters.

Each grade or nbval run starts a Jupyter kernel (~2 s), so related cases share one run where they can.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jupytext
import pytest

from mlc_lab.cli import main
from mlc_lab.grading import grade, list_checks, module_name, read_notebook, run_check
from mlc_lab.grading.grader import Options
from mlc_lab.grading.notebooks import NotebookFormatError, find_notebooks
from mlc_lab.grading.registry import NoChecksError

DATA = Path(__file__).parent / "grading_data"
CHECKS = DATA / "checks"
NAMES = ["check_add", "check_squares", "check_total"]
#: Tests never guard the real package: others edit this working tree while tests run.
SAFE = Options(guard=())
NO_GUARD = ["--no-package-check"]


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A private copy of the synthetic exercise/solution/checks tree, safe to edit."""
    shutil.copytree(DATA, tmp_path / "data")
    return tmp_path / "data"


def verdicts(report) -> dict[str, bool]:
    (nb,) = report.notebooks
    assert nb.error is None, nb.error
    return {r.name: r.passed for r in nb.results}


def edit_cells(path: Path, edit) -> None:
    """Rewrite a MyST notebook through jupytext after `edit(cells)` changed its cell list in place."""
    nb = read_notebook(path)
    edit(nb.cells)
    path.write_text(jupytext.writes(nb, fmt="md:myst"), encoding="utf-8")


def is_check(cell) -> bool:
    return "check" in cell.metadata.get("tags", [])


# --- naming and discovery ------------------------------------------------------------------------


def test_module_names_are_valid_identifiers() -> None:
    assert module_name("01_ir") == "ch01_ir"
    assert module_name("02-fusion") == "ch02_fusion"
    assert module_name("toy") == "toy"
    assert module_name("exercises/03_layout.md") == "ch03_layout"


def test_checks_are_listed_in_source_order_without_import() -> None:
    assert list_checks("toy", CHECKS) == NAMES


def test_missing_checks_module_is_a_clear_error() -> None:
    with pytest.raises(NoChecksError, match="ch99_nothing"):
        list_checks("99_nothing")


def test_run_check_raises_assertion_with_message(capsys: pytest.CaptureFixture[str]) -> None:
    run_check("toy", "check_add", {"add": lambda a, b: a + b}, checks=CHECKS)
    assert "check_add: PASS (2/2 points)" in capsys.readouterr().out
    with pytest.raises(AssertionError) as failed:
        run_check("toy", "check_add", {"add": lambda a, b: a - b}, checks=CHECKS)
    text = str(failed.value)
    assert "add(2, 3): wrong answer" in text and "expected: 5" in text and "got:      -1" in text, text


def test_feedback_cuts_long_values_to_one_readable_line() -> None:
    """Failed cases show input, expected and got, cut sensibly: one line each, the start kept and '...'
    marking the cut (a value of any size), the text report within its width, JSON with the whole cut value."""
    import numpy as np

    from mlc_lab.grading import GradeReport, NotebookReport, load_checks
    from mlc_lab.grading.scoring import evaluate
    from mlc_lab.grading.session import SHOW_CHARS, Grading, LocalStudent

    squares = {"make_squares": lambda n: [i * i + 1 for i in range(100_000)]}  # off by one, and huge
    g = Grading(LocalStudent(squares), np.random.default_rng(0))
    result = evaluate(load_checks("toy", CHECKS).check_squares, g, "check_squares")
    assert not result.passed and result.cases
    case = result.cases[0]
    assert case.got.startswith("[1, 2, 5, 10, 17") and case.got.endswith("...") and len(case.got) == SHOW_CHARS
    assert case.input == "make_squares(4)" and case.expected == "[0, 1, 4, 9]"  # short values stay whole
    report = GradeReport([NotebookReport(Path("alice/toy.md"), "toy", results=[result])])
    text = report.format(width=80)
    got_lines = [line for line in text.splitlines() if line.strip().startswith("got:")]
    assert got_lines and all(len(line) <= 80 and line.endswith("...") for line in got_lines), text
    (cases,) = [r["cases"] for r in report.to_dict()["notebooks"][0]["results"]]
    assert cases[0]["got"] == case.got  # the JSON report keeps the value as cut for feedback, not the line


def test_run_check_refuses_the_librarys_own_object() -> None:
    from mlc_lab.tuning.space import factorizations

    with pytest.raises(AssertionError, match="mlc_lab.tuning.space's own function"):
        run_check("05_tuning", "check_tile_splits", {"tile_splits": factorizations})


def test_md_without_myst_header_is_an_error_not_an_empty_notebook(tmp_path: Path) -> None:
    plain = tmp_path / "plain.md"
    plain.write_text("# Notes\n\n```python\nx = 1\n```\n")
    with pytest.raises(NotebookFormatError, match="not a MyST notebook"):
        read_notebook(plain)
    no_code = tmp_path / "no_code.md"
    no_code.write_text((DATA / "solutions" / "toy.md").read_text().split("# Toy")[0] + "# Only prose\n")
    with pytest.raises(NotebookFormatError, match="no code cells"):
        read_notebook(no_code)


def test_find_notebooks_skips_prose_and_paired_ipynb(work: Path) -> None:
    (work / "solutions" / "README.md").write_text("# About these solutions\n")
    (work / "solutions" / "notes.md").write_text("plain markdown\n")
    nb = read_notebook(work / "solutions" / "toy.md")
    (work / "solutions" / "toy.ipynb").write_text(jupytext.writes(nb, fmt="ipynb"))
    assert find_notebooks(work / "solutions") == [work / "solutions" / "toy.md"]


# --- grading ---------------------------------------------------------------------------------------


def test_solution_passes_every_check() -> None:
    report = grade(DATA / "solutions" / "toy.md", checks=CHECKS, options=SAFE)
    assert verdicts(report) == dict.fromkeys(NAMES, True)
    assert report.ok and report.passed == report.total == 3
    assert "score: 4/4 points (100%), 3/3 checks" in report.format()


def test_untouched_exercise_fails_every_check_readably() -> None:
    report = grade(DATA / "exercises" / "toy.md", checks=CHECKS, options=SAFE)
    (nb,) = report.notebooks
    messages = {r.name: r.message for r in nb.results}
    assert verdicts(report) == dict.fromkeys(NAMES, False)
    assert messages["check_add"] == "not implemented yet (NotImplementedError: add)"
    assert "make_squares" in messages["check_squares"]
    assert "no variable `total`" in messages["check_total"]
    assert not report.ok and "score: 0/4 points (0%), 0/3 checks" in report.format()
    text = report.format()
    assert "add(2, 3): not implemented yet" in text and "expected: 5" in text  # each failed case, shown
    assert nb.cell_errors == ["cell 2: NotImplementedError: make_squares"]  # the student's own error


def test_editing_or_deleting_check_cells_changes_nothing(work: Path) -> None:
    exercise = work / "exercises" / "toy.md"

    def fake_checks(cells) -> None:
        for cell in cells:
            if is_check(cell):
                cell.source = "assert True  # 'passes'"
        # Also try to pre-empt the grader's recorder and forge a verdict.
        forged = (
            "from IPython.display import display\n"
            "_mlc_lab_record_check = lambda *a, **k: None\n"
            "display({'application/vnd.mlc-lab.check+json': "
            "{'check': 'check_add', 'passed': True, 'message': '', 'token': 'guess'}}, raw=True)"
        )
        cells.insert(0, jupytext.reads(f"# %%\n{forged}\n", fmt="py:percent").cells[0])

    edit_cells(exercise, fake_checks)
    assert verdicts(grade(exercise, checks=CHECKS, options=SAFE)) == dict.fromkeys(NAMES, False)

    solution = work / "solutions" / "toy.md"
    edit_cells(solution, lambda cells: cells.__setitem__(slice(None), [c for c in cells if not is_check(c)]))
    assert "run_check" not in solution.read_text()
    assert verdicts(grade(solution, checks=CHECKS, options=SAFE)) == dict.fromkeys(NAMES, True)


def test_a_raising_cell_does_not_stop_the_checks(work: Path) -> None:
    solution = work / "solutions" / "toy.md"
    boom = jupytext.reads("# %%\nraise RuntimeError('student bug')\n", fmt="py:percent").cells[0]
    edit_cells(solution, lambda cells: cells.insert(1, boom))
    assert verdicts(grade(solution, checks=CHECKS, options=SAFE)) == dict.fromkeys(NAMES, True)


def test_ipynb_and_folders_are_graded(work: Path) -> None:
    nb = read_notebook(work / "solutions" / "toy.md")
    (work / "solutions" / "toy.md").unlink()
    (work / "solutions" / "toy.ipynb").write_text(jupytext.writes(nb, fmt="ipynb"))
    report = grade(work / "solutions", checks=CHECKS, options=SAFE)
    assert [p.path.name for p in report.notebooks] == ["toy.ipynb"]
    assert report.ok


def test_notebook_without_checks_is_reported_not_passed(tmp_path: Path) -> None:
    renamed = tmp_path / "toy_copy.md"
    shutil.copy(DATA / "solutions" / "toy.md", renamed)
    report = grade(renamed, checks=CHECKS, options=SAFE)
    assert not report.ok and "no official checks" in (report.notebooks[0].error or "")
    assert main(["grade", str(renamed), "--checks", str(CHECKS), *NO_GUARD]) == 2


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", str(DATA / "solutions" / "toy.md"), "--checks", str(CHECKS), *NO_GUARD]) == 0
    assert "check_total    PASS" in capsys.readouterr().out
    assert main(["grade", str(DATA / "exercises"), "--checks", str(CHECKS), "--json", *NO_GUARD]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["total"] == 3 and data["passed"] == 0
    (nb,) = data["notebooks"]
    assert nb["points"] == 4 and nb["earned"] == 0 and isinstance(nb["seed"], int)
    add = nb["results"][0]
    assert add["cases"][0] == {
        "input": "add(2, 3)",
        "passed": False,
        "expected": "5",
        "got": "",
        "message": "not implemented yet (NotImplementedError: add)",
        "hidden": False,
    }
    assert main(["grade", "no/such/notebook.md"]) == 2


# --- nbval on .md notebooks -----------------------------------------------------------------------


def run_nbval(root: Path, *paths: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """pytest --nbval-lax in a subprocess on `root`; returns the process and {test id: outcome}."""
    (root / "pytest.ini").write_text("[pytest]\n")  # root of its own: the repository's conftest stays out
    junit = root / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-p", "mlc_lab.grading.pytest_plugin", "-p", "no:cacheprovider"]
    cmd += ["--nbval-lax", f"--junitxml={junit}", *paths]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=300)
    outcomes = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            bad = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
            outcomes[f"{case.get('classname')}::{case.get('name')}"] = bad[0] if bad else "passed"
    return proc, outcomes


def test_nbval_runs_md_notebooks_on_this_environment_kernel(work: Path) -> None:
    (work / "solutions" / "kernel.md").write_text(
        (work / "solutions" / "toy.md").read_text().split("# Toy")[0]
        + f"```{{code-cell}} ipython3\nimport sys\nassert sys.executable == {sys.executable!r}, sys.executable\n```\n"
        + "\n```{code-cell} ipython3\nraise ValueError('a deliberately failing cell')\n```\n"
    )
    proc, outcomes = run_nbval(work, "solutions")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    solution = {k: v for k, v in outcomes.items() if "toy" in k}
    assert len(solution) == 5 and set(solution.values()) == {"passed"}, outcomes  # 2 cells + 3 check cells
    kernel = sorted((k, v) for k, v in outcomes.items() if "kernel" in k)
    assert [v for _, v in kernel] == ["passed", "failure"], proc.stdout


def test_nbval_check_cells_fail_on_the_exercise(work: Path) -> None:
    proc, outcomes = run_nbval(work, "exercises")
    assert proc.returncode == 1
    assert sum(v == "failure" for v in outcomes.values()) == 3, proc.stdout  # the three check cells


def test_nbval_refuses_md_without_myst_header(work: Path) -> None:
    (work / "solutions" / "plain.md").write_text("# Notes\n\n```python\nx = 1\n```\n")
    proc, _ = run_nbval(work, "solutions")
    assert proc.returncode != 0
    assert "not a MyST notebook" in proc.stdout


# --- what may cross from the student's process ----------------------------------------------------


def test_wire_round_trips_data_and_graphs_and_refuses_code() -> None:
    import numpy as np

    from mlc_lab.grading import wire
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("g")
    x = b.input("x", (2, 3))
    graph = b.build(b.add(x, b.constant(0.0, "zero"), name="y"))
    value = {"a": (1, 2.5, None), 3: [np.arange(4, dtype=np.int32), np.float32(2)], "g": graph}
    back = wire.loads(wire.dumps(value))
    assert back["a"] == (1, 2.5, None) and back[3][0].dtype == np.int32 and back[3][1] == 2.0
    assert str(back["g"]) == str(graph) and back["g"].node("zero").value.shape == ()
    with pytest.raises(wire.WireError, match="cannot be sent"):
        wire.dumps(object())
    with pytest.raises(wire.WireError, match="dtype object"):
        wire.dumps(np.array([object()]))
    with pytest.raises(wire.WireError):  # a pickle is not JSON: never unpickled
        wire.loads(b"\x80\x04\x95")
    bad_graph = b'{"__graph__": {"nodes": [["y", "relu", [5], {}, [2], "float32"]], "inputs": [], "outputs": [0]}}'
    with pytest.raises(wire.WireError, match="defined after it"):
        wire.loads(bad_graph)


def test_integrity_flags_hidden_code_not_ordinary_calls() -> None:
    from mlc_lab.grading.integrity import delegations, inspect_cells

    ordinary = [
        "import re, torch\nimport mlc_lab\nre.compile('x'); torch.compile(f); mlc_lab.compile(m, xs)",
        "!ls -l\n%timeit sum(range(10))",
        'def f():\n    """Return all factorizations of n."""',
    ]
    assert inspect_cells(ordinary).dynamic == []
    hidden = ["exec(open('a.py').read())", "%run other.py", "import importlib\nimportlib.import_module('m')"]
    assert len(inspect_cells(hidden).dynamic) == 3
    assert inspect_cells(["x = open('../solutions/01_ir.md').read()"]).dynamic
    refs = inspect_cells(["from mlc_lab.tuning import space as sp\nsplits = sp.factorizations"])
    assert delegations(refs, ["mlc_lab.tuning.space.factorizations"])
    assert not delegations(
        inspect_cells(["from mlc_lab.tuning.space import SearchSpace"]), ["mlc_lab.tuning.space.factorizations"]
    )
