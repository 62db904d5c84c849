"""Speed claims come from the run: the wording helper, and a lint for un-computed claims in the chapters.

The book is built on whatever machine the reader has, so "TVM beats eager" typed into prose can be
false on the page it is printed on. Every comparison a chapter states is worded by
`mlc_lab.bench.compare_words` from times the notebook just measured (or sits in an f-string that
prints the measured numbers next to it); the lint below finds comparison words anywhere else.
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from mlc_lab.bench import Claim, ClaimContradicted, compare_words

CHAPTERS = sorted((Path(__file__).parents[1] / "chapters").glob("*.md"))

#: Words that state a speed comparison. "faster than the peak" kinds of laws are worded without them.
COMPARISON = re.compile(
    r"\b(faster|fastest|slower|slowest|quicker|beats?|beating|outperform\w*|wins?|winning|trails?|trailing|"
    r"speed-?ups?)\b",
    re.IGNORECASE,
)


# -- the helper ------------------------------------------------------------------------------------------
def test_compare_words_words_the_ratio_it_computes():
    claim = compare_words(0.041, 0.1, "TVM", "eager")
    assert claim == "TVM takes 0.41\u00d7 the time of eager (faster)"
    assert isinstance(claim, Claim) and isinstance(claim, str)
    assert math.isclose(claim.ratio, 0.41) and claim.verdict == "faster" and (claim.a, claim.b) == ("TVM", "eager")
    slower = compare_words(np.float64(3e-3), 1e-3, "MLP on TVM", "torch.compile")
    assert slower == "MLP on TVM takes 3.00\u00d7 the time of torch.compile (slower)" and slower.verdict == "slower"


def test_compare_words_calls_noise_a_tie_not_a_win():
    assert compare_words(1.03, 1.0, "a", "b").verdict == "about as fast"
    assert compare_words(0.97, 1.0, "a", "b").verdict == "about as fast"
    assert compare_words(0.97, 1.0, "a", "b", tie=0.01).verdict == "faster"
    assert compare_words(1.2, 1.0, "a", "b", tie=0.25).endswith("(about as fast)")


def test_compare_words_asserts_the_claim_the_text_expects():
    assert compare_words(1.0, 2.0, "tuned", "default", expect="faster").verdict == "faster"
    with pytest.raises(ClaimContradicted, match=r"expected tuned to be faster .* takes 2\.00x the time of default"):
        compare_words(2.0, 1.0, "tuned", "default", expect="faster")
    with pytest.raises(ValueError, match="expect='quicker' is not a verdict"):
        compare_words(1.0, 2.0, expect="quicker")


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "1.0", None, True])
def test_compare_words_refuses_a_time_that_is_not_one(bad):
    with pytest.raises(ValueError, match=r"the time of 'inductor' must be finite seconds > 0"):
        compare_words(1e-3, bad, "tvm", "inductor")


# -- the lint ---------------------------------------------------------------------------------------------
def split_cells(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(prose lines, code cells) of a MyST notebook, each with its first line number."""
    lines = text.splitlines()
    start = lines.index("---", 1) + 1 if lines and lines[0] == "---" else 0
    prose, cells, cell, cell_start = [], [], None, 0
    for number, line in enumerate(lines[start:], start + 1):
        if cell is None and line.startswith("```{code-cell}"):
            cell, cell_start = [], number + 1
        elif cell is not None and line.startswith("```"):
            cells.append((cell_start, "\n".join(cell)))
            cell = None
        elif cell is not None:
            cell.append("" if line.startswith(":") and not "".join(cell).strip() else line)  # cell options
        else:
            prose.append((number, line))
    return prose, cells


def _computed_fstring_parts(tree: ast.AST) -> set[int]:
    """ids of the string pieces of f-strings that print at least one computed value."""
    ok: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
            ok |= {id(v) for v in node.values}
    return ok


def uncomputed_claims_in_code(source: str) -> list[tuple[int, str]]:
    """Comparison words in a cell's comments and plain strings (f-strings printing numbers are fine)."""
    found = []
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    tree = ast.parse(code)
    computed = _computed_fstring_parts(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in computed:
            if COMPARISON.search(node.value):
                found.append((node.lineno, node.value))
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT and COMPARISON.search(token.string):
            found.append((token.start[0], token.string))
    return found


def uncomputed_claims(path: Path) -> list[str]:
    prose, cells = split_cells(path.read_text())
    found = [f"{path.name}:{n}: {line.strip()}" for n, line in prose if COMPARISON.search(line)]
    for start, source in cells:
        found += [f"{path.name}:{start + n - 1}: {text.strip()}" for n, text in uncomputed_claims_in_code(source)]
    return found


def test_the_lint_finds_what_it_is_for():
    prose, cells = split_cells("---\nx: 1\n---\nTVM beats eager here.\n```{code-cell} ipython3\nx = 1\n```\nok\n")
    assert [n for n, line in prose if COMPARISON.search(line)] == [4] and cells == [(6, "x = 1")]
    code = 'print("tuned is faster")  # and slower\nprint(f"{r:.2f}x: faster")\nprint(compare_words(a, b))\n'
    assert [n for n, _ in uncomputed_claims_in_code(code)] == [1, 1]


#: Sentences with a comparison word that state no measured comparison (a bound, a definition), and why.
NOT_CLAIMS = {
    "03_layout.md": ["Which is fastest depends on the loops"],  # the question the chapter then measures
    "05_tuning.md": [
        "the fastest depends on the machine's caches",  # why a search is needed at all
        "wrongly must never win",  # about correctness checks, no speed
        "the candidates it predicts fastest",  # what the strategy does
        "The winning schedule, as TVMScript",  # the tuner's best, printed
        "can go no faster than the machine's peak FLOP/s, nor faster than memory",  # the roofline bound
    ],
    "06_accelerators.md": ["Throughput is set by the slowest stage"],  # a pipeline's definition
}


def _not_a_claim(chapter: str, line: str) -> bool:
    return any(phrase in line for phrase in NOT_CLAIMS.get(chapter, ()))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_states_a_comparison_it_did_not_compute(chapter):
    found = [f for f in uncomputed_claims(chapter) if not _not_a_claim(chapter.name, f)]
    assert not found, "speed claims not computed from this run (word them with mlc_lab.bench.compare_words):\n" + (
        "\n".join(found)
    )
