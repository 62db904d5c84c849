"""The compiler-work exercises of chapters 5, 6 and 9 flag an answer that calls the library's own model
(the simulator, the tuning cost, the fusion passes) and accept the honest answers their solutions give.

Only the integrity inspection runs here (an AST walk over the cells): the checks themselves are run by
tests/test_course_grading.py (solutions) and tests/test_grading_wrong_answers.py (wrong answers).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlc_lab.grading.integrity import delegations, inspect_cells
from mlc_lab.grading.registry import get_check

ROOT = Path(__file__).resolve().parent.parent

#: (notebook, check, a cell answering with the library's own model, the name that must be reported)
DELEGATIONS = [
    (
        "05_tuning",
        "check_cost_model_feature",
        "from mlc_lab.tuning.accelerator import analytical_cycles\n"
        "def tile_features(configs, m, n, k, rows, cols):\n"
        "    return [{'cycles': analytical_cycles(c, m, n, k, rows, cols)} for c in configs]\n",
        "analytical_cycles",
    ),
    (
        "06_accelerators",
        "check_choose_mapping",
        "from mlc_lab.sim import systolic as s\n"
        "def choose_mapping(m, n, k, rows, cols):\n"
        "    return min(['os', 'ws', 'is'], key=lambda d: s.gemm_folds(m, n, k, rows, cols, d).cycles)\n",
        "gemm_folds",
    ),
    (
        "06_accelerators",
        "check_choose_mapping",
        "from mlc_lab.backends.custom import SystolicArrayBackend as B\n"
        "def choose_mapping(m, n, k, rows, cols):\n"
        "    return min(['os', 'ws'], key=lambda d: B(rows, cols, d).simulate_gemm(m, n, k).cycles)\n",
        "SystolicArrayBackend",
    ),
    (
        "09_performance",
        "check_profile_guided_fusion",
        "from mlc_lab.passes.fusion import ElementwiseFusionPass\n"
        "def best_fusion(graph, peak, bandwidth):\n"
        "    return [n.name for n in ElementwiseFusionPass().apply(graph).ops]\n",
        "ElementwiseFusionPass",
    ),
]


@pytest.mark.parametrize("notebook, check, cell, name", DELEGATIONS, ids=lambda v: v if "\n" not in str(v) else "")
def test_answering_with_the_library_model_is_flagged(notebook: str, check: str, cell: str, name: str) -> None:
    found = delegations(inspect_cells([cell]), get_check(notebook, check).forbids)
    assert found and name in found[0], found


@pytest.mark.parametrize(
    "notebook, check",
    [
        ("05_tuning", "check_cost_model_feature"),
        ("06_accelerators", "check_choose_mapping"),
        ("09_performance", "check_kernel_profile"),
        ("09_performance", "check_profile_guided_fusion"),
    ],
)
def test_the_solution_is_not_flagged(notebook: str, check: str) -> None:
    solution = (ROOT / "solutions" / f"{notebook}.md").read_text()
    cells = re.findall(r"```\{code-cell\} ipython3\n(.*?)```", solution, re.S)
    assert cells
    assert delegations(inspect_cells(cells), get_check(notebook, check).forbids) == []
