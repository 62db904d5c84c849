"""`mlc-lab book` builds the book with every chapter executed; `mlc-lab lab` opens JupyterLab on it.

Both run tools from this environment's bin folder, so they use the same interpreter and packages
as the notebooks' kernel; neither needs the venv to be activated.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

#: JupyterLab setting that opens .md/.py files as notebooks on double-click (jupytext's viewer).
LAB_OVERRIDES = {
    "@jupyterlab/docmanager-extension:plugin": {
        "defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook", "python": "Jupytext Notebook"}
    }
}


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest folder up from `start` (default: cwd) with _config.yml and _toc.yml."""
    candidates = [start or Path.cwd(), Path(__file__).resolve().parent.parent]
    for base in candidates:
        for folder in [base.resolve(), *base.resolve().parents]:
            if (folder / "_config.yml").is_file() and (folder / "_toc.yml").is_file():
                return folder
    raise FileNotFoundError("no _config.yml/_toc.yml found: run from inside the mlc-lab repository")


def _tool(name: str) -> str:
    """A console script of this environment (sys.executable's folder), falling back to PATH."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def build_book(root: Path, rebuild_all: bool = True, builder: str = "html") -> int:
    """`jupyter-book build -W --keep-going`: warnings and cells that raise make the exit status non-zero.

    `--all` by default: Sphinx skips unchanged pages, and a page that is not re-read is not re-executed.
    """
    from mlc_lab.grading.notebooks import use_environment_kernels

    use_environment_kernels()
    cmd = [_tool("jupyter-book"), "build", "-W", "--keep-going", "--builder", builder]
    cmd += ["--all"] if rebuild_all else []
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # silence the debugger's frozen-modules note
    code = subprocess.call([*cmd, str(root)], env=env)
    if code == 0:
        print(f"\nThe book: {root / '_build' / 'html' / 'index.html'}")
    return code


def configure_jupyterlab(prefix: Path | None = None) -> Path:
    """Write the default-viewer override into `{prefix}/share/jupyter/lab/settings/overrides.json`, merging."""
    path = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(path.read_text()) if path.is_file() and path.read_text().strip() else {}
    for plugin, values in LAB_OVERRIDES.items():
        settings.setdefault(plugin, {}).update(values)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def _run_book(args: argparse.Namespace) -> int:
    return build_book(find_root(), rebuild_all=not args.incremental, builder=args.builder)


def _run_lab(args: argparse.Namespace) -> int:
    root = find_root()
    configure_jupyterlab()
    from mlc_lab.grading.notebooks import use_environment_kernels

    use_environment_kernels()
    cmd = [_tool("jupyter-lab"), f"--ServerApp.root_dir={root}", f"--port={args.port}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    if args.ip:
        cmd.append(f"--ip={args.ip}")
    if os.name == "posix":  # become jupyter-lab, so signals (Ctrl-C, kill) reach the server directly
        os.execvp(cmd[0], cmd)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    book = subparsers.add_parser(
        "book",
        help="build the book (HTML) with every chapter executed",
        description="Build the book with jupyter-book. Exits non-zero if any cell raises or Sphinx warns.",
    )
    book.add_argument("--incremental", action="store_true", help="only rebuild changed pages (default: all)")
    book.add_argument("--builder", default="html", help="jupyter-book builder (default: html)")
    book.set_defaults(func=_run_book)

    lab = subparsers.add_parser(
        "lab",
        help="start JupyterLab; .md chapters open as notebooks",
        description="Start JupyterLab at the repository root, with jupytext opening .md/.py files as notebooks.",
    )
    lab.add_argument("--port", type=int, default=8888, help="port (default 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--ip", default=None, help="address to listen on (e.g. 0.0.0.0 in a container)")
    lab.set_defaults(func=_run_lab)


#: What a chapter's prose is: the markdown between code cells, without front matter or directive fences.
_CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```\s*$", re.S | re.M)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")


def prose_words(chapter: Path) -> int:
    """Words of explanation in a MyST chapter: code cells, their outputs and the header do not count.

    The depth standard (at least 2,000 words a chapter) is about what the reader is told, so a chapter
    cannot meet it by printing more.
    """
    text = _FRONT_MATTER.sub("", chapter.read_text())
    return len(_WORD.findall(_CODE_CELL.sub("", text)))
