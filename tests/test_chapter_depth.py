"""Every chapter explains at length and ends by saying what the reader can now do (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc_lab.book import prose_words

CHAPTERS = sorted((Path(__file__).parents[1] / "chapters").glob("*.md"))

MIN_WORDS = 2000


def test_the_counter_skips_code_and_front_matter(tmp_path):
    page = tmp_path / "x.md"
    page.write_text("---\njupytext: x\n---\n# One two\n\n```{code-cell} ipython3\nthree = four\n```\nfive six\n")
    assert prose_words(page) == 4


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.stem)
def test_every_chapter_meets_the_depth_standard(chapter):
    words = prose_words(chapter)
    assert words >= MIN_WORDS, f"{chapter.name}: {words} words of prose, the standard is {MIN_WORDS}"
    headings = [line.lstrip("#").strip().lower() for line in chapter.read_text().splitlines() if line.startswith("## ")]
    assert "what you can now do" in headings, f"{chapter.name} has no '## What you can now do' section"
