"""Read notebooks the way the book does, and start kernels from this environment.

Notebooks live in git as jupytext MyST Markdown (`.md`), so every tool here (nbval, the grader)
reads them through jupytext with the format forced. A `.md` file whose header does not declare
MyST would otherwise be read as plain Markdown and give a notebook with no code cells: a test run
that passes having run nothing. We raise instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import nbformat

from mlc_lab.errors import MlcLabError

#: Imports that reading a notebook never needs, blocked while jupytext and nbformat load (see `_readers`).
SKIPPED_IMPORTS = ("rfc3987_syntax", "jupytext.sync_contentsmanager", "jupytext.async_contentsmanager")


def _readers() -> tuple[Any, Any]:
    """jupytext and nbformat, imported on first use and without what only Jupyter's server needs.

    nbformat's validator imports jsonschema, whose format checker imports `rfc3987_syntax` when it is
    installed, and that builds a Lark grammar for IRIs at import (~1.3 s per process); the notebook
    schema has no IRI formats. jupytext imports its contents managers, which import jupyter_server and
    tornado (~half of its import time); reading needs neither. The grader blocks these imports while
    the two load (unless something imported them already) and unblocks them afterwards: a later
    `import rfc3987_syntax` works as usual, and `jupytext.TextFileContentsManager` imports on first use.
    """
    blocked = [name for name in SKIPPED_IMPORTS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # an import of it raises ImportError
    try:
        import jupytext
        import nbformat
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    if "jupytext.sync_contentsmanager" in blocked and "__getattr__" not in vars(jupytext):
        _contents_managers_on_demand(jupytext)
    return jupytext, nbformat


def _contents_managers_on_demand(jupytext: Any) -> None:
    """Replace the stubs jupytext left for its blocked contents managers by an import on first use."""
    sources = {
        "build_sync_jupytext_contents_manager_class": "sync_contentsmanager",
        "TextFileContentsManager": "sync_contentsmanager",
        "build_async_jupytext_contents_manager_class": "async_contentsmanager",
        "AsyncTextFileContentsManager": "async_contentsmanager",
    }
    for name in sources:
        vars(jupytext).pop(name, None)

    def load(name: str) -> Any:
        if name not in sources:
            raise AttributeError(f"module 'jupytext' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"jupytext.{sources[name]}"), name)
        setattr(jupytext, name, value)
        return value

    jupytext.__getattr__ = load


def preload_readers() -> None:
    """Import the notebook readers now (a grader forking its grading processes pays for them once)."""
    _readers()


#: libyaml's safe loader when PyYAML has it: ~10x faster on a header (a class of 100 is read twice).
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
#: Files that sit next to notebooks but are prose, never notebooks.
PROSE_FILES = frozenset({"readme.md", "changelog.md", "license.md"})


class NotebookFormatError(MlcLabError, ValueError):
    """A file that should be a notebook but cannot be read as one."""


def front_matter(text: str) -> dict:
    """The YAML block between the leading `---` lines, or {} when there is none."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    for end, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            try:
                data = yaml.load("\n".join(lines[1:end]), Loader=SAFE_LOADER)
            except yaml.YAMLError as e:
                raise NotebookFormatError(f"unreadable YAML header: {e}") from None
            return data if isinstance(data, dict) else {}
    raise NotebookFormatError("the YAML header opened with '---' is never closed")


def is_myst_notebook(text: str) -> bool:
    """The rule MyST-NB (the book) uses: a header naming the MyST format, or `file_format: mystnb`."""
    header = front_matter(text)
    fmt = (header.get("jupytext") or {}).get("text_representation", {}).get("format_name")
    return fmt == "myst" or header.get("file_format") == "mystnb"


def read_notebook(path: str | os.PathLike[str]) -> nbformat.NotebookNode:
    """Read a `.ipynb`, a MyST `.md` or a percent-format `.py` notebook as nbformat v4.

    Raises NotebookFormatError when a text file does not declare its notebook format, or when
    the notebook has no code cell at all (almost always a header jupytext did not recognise).
    """
    jupytext, nbformat = _readers()
    path = Path(path)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".md":
            if not is_myst_notebook(text):
                raise NotebookFormatError(
                    "not a MyST notebook: the header needs `jupytext: text_representation: format_name: myst` "
                    "(run `jupytext --set-formats md:myst FILE` or copy the header of another chapter)"
                )
            nb = jupytext.reads(text, fmt="md:myst")
        elif path.suffix == ".py":
            if "# %%" not in text:
                raise NotebookFormatError("not a percent-format notebook: no `# %%` cell markers")
            nb = jupytext.reads(text, fmt="py:percent")
        else:
            raise NotebookFormatError(f"unknown notebook extension {path.suffix!r}")
    except NotebookFormatError as e:
        raise NotebookFormatError(f"{path}: {e}") from None
    if not any(cell.cell_type == "code" for cell in nb.cells):
        raise NotebookFormatError(f"{path}: no code cells (cells must be ```{{code-cell}} ipython3 blocks)")
    return nb


def find_notebooks(folder: str | os.PathLike[str], strict: bool = True) -> list[Path]:
    """Notebooks under `folder`: `.ipynb` files and `.md` files with a MyST notebook header.

    A `.ipynb` with a `.md` twin (a jupytext pairing) is left out: the `.md` is the source.
    `strict=False` (grading a class) keeps a `.md` whose header cannot be read, so that it is
    reported as broken rather than silently skipped or stopping the whole folder.
    """
    found = []
    folder = Path(folder)
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue  # .ipynb_checkpoints, editor backups
        if path.suffix == ".md" and path.name.lower() not in PROSE_FILES:
            try:
                if is_myst_notebook(path.read_text(encoding="utf-8")):
                    found.append(path)
            except (NotebookFormatError, UnicodeDecodeError):
                if strict:
                    raise
                found.append(path)
        elif path.suffix == ".ipynb" and not path.with_suffix(".md").exists():
            found.append(path)
    return found


def use_environment_kernels() -> None:
    """Make kernel name lookups (`python3`) resolve to this environment's kernel spec first.

    Jupyter searches the user's data directory (~/.local/share/jupyter) before the environment's,
    so a stale user-level `python3` kernel would run notebooks with another interpreter and other
    packages. JUPYTER_PATH is searched before both; kernels inherit it, which is harmless.
    """
    env_data = str(Path(sys.prefix) / "share" / "jupyter")
    paths = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    if not paths or paths[0] != env_data:
        os.environ["JUPYTER_PATH"] = os.pathsep.join([env_data, *[p for p in paths if p != env_data]])
