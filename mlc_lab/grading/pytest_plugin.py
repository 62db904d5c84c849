"""A pytest plugin that lets nbval run jupytext MyST notebooks (`.md`) as if they were `.ipynb`.

nbval collects only `.ipynb` files ("collected 0 items" on a folder of `.md` notebooks). Here a
`.md` file becomes nbval's own collector, with its read swapped for `read_notebook`, which forces
the MyST format and raises on a header it does not recognise (a collection error, not 0 tests).
Kernels: unless told otherwise, every notebook runs on this environment's `python3` kernel.

Loaded by the repository's conftest.py; elsewhere: `pytest -p mlc_lab.grading.pytest_plugin --nbval-lax DIR`.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbval import plugin as nbval_plugin

from mlc_lab.grading.notebooks import (
    PROSE_FILES,
    NotebookFormatError,
    is_myst_notebook,
    read_notebook,
    use_environment_kernels,
)


def _nbval_on(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


@contextlib.contextmanager
def _nbval_reads_with_jupytext() -> Iterator[None]:
    """nbval calls `nbformat.read(path)` inside `collect`; give it our reader for that call only."""
    shim = types.SimpleNamespace(**{k: getattr(nbformat, k) for k in dir(nbformat) if not k.startswith("__")})
    shim.read = lambda path, as_version=4, **kw: read_notebook(path)
    saved, nbval_plugin.nbformat = nbval_plugin.nbformat, shim
    try:
        yield
    finally:
        nbval_plugin.nbformat = saved


class MystNotebookFile(nbval_plugin.IPyNbFile):
    """nbval's notebook collector, reading a MyST `.md` notebook through jupytext."""

    def collect(self):
        try:
            with _nbval_reads_with_jupytext():
                items = list(super().collect())
        except NotebookFormatError as exc:
            raise self.CollectError(str(exc)) from None
        yield from items


def pytest_configure(config: pytest.Config) -> None:
    if _nbval_on(config):
        use_environment_kernels()
        if not config.option.nbval_kernel_name and not config.option.nbval_current_env:
            config.option.nbval_kernel_name = "python3"


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _nbval_on(parent.config) and file_path.suffix == ".md" and file_path.name.lower() not in PROSE_FILES:
        return MystNotebookFile.from_parent(parent, path=file_path)
    return None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Skip `X.ipynb` next to a MyST `X.md`: the `.md` is the source, the `.ipynb` a jupytext pairing."""
    twin = collection_path.with_suffix(".md")
    if _nbval_on(config) and collection_path.suffix == ".ipynb" and twin.is_file():
        if is_myst_notebook(twin.read_text(encoding="utf-8")):
            return True
    return None
