"""Integrity: a submission that answers with the library's own implementation, runs other code, or
changes files it must not (the installed package, other students' submissions) is flagged.

The inspection reads the student's cells with `ast` in the grader's process (IPython magics are
first turned into the calls IPython would make), so nothing the notebook does at run time hides it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: Builtins that run code the grader cannot see (a string, another file, the solutions). Only the
#: bare builtins: `torch.compile`, `re.compile` and `mlc_lab.compile` are ordinary calls.
DYNAMIC_CALLS = frozenset({"exec", "eval", "compile", "__import__", "execfile"})
#: Functions of importlib/runpy that import or run code by name or path.
DYNAMIC_ATTRS = frozenset({"import_module", "run_path", "run_module", "exec_module", "spec_from_file_location"})
#: Magics that run another file's code in the notebook (shell commands are left alone: `!ls` is fine,
#: and a command naming the solutions is caught by the string check).
DYNAMIC_MAGICS = frozenset({"run", "load", "loadpy"})


def python_source(cell: str) -> str:
    """A cell's source as plain Python (magics become `get_ipython().run_line_magic(...)` calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(cell)


class References(ast.NodeVisitor):
    """Dotted names a cell refers to, with import aliases resolved (`sp.factorizations` ->
    `mlc_lab.tuning.space.factorizations`), plus calls that run hidden code."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.names: set[str] = set()
        self.star_imports: set[str] = set()
        self.dynamic: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            self.names.add(a.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        for a in node.names:
            if a.name == "*":
                self.star_imports.add(module)
                continue
            self.aliases[a.asname or a.name] = f"{module}.{a.name}"
            self.names.add(f"{module}.{a.name}")

    def _dotted(self, node: ast.AST) -> str | None:
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = self._dotted(node)
        if dotted:
            self.names.add(dotted)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        self.names.add(self.aliases.get(node.id, node.id))

    def visit_Call(self, node: ast.Call) -> None:
        fn = node.func
        dotted = self._dotted(fn) or ""
        if isinstance(fn, ast.Name) and fn.id in DYNAMIC_CALLS and fn.id not in self.aliases:
            self.dynamic.append(f"line {node.lineno}: calls {fn.id}()")
        elif dotted.startswith("builtins.") and dotted.split(".")[-1] in DYNAMIC_CALLS:
            self.dynamic.append(f"line {node.lineno}: calls {dotted}()")
        elif isinstance(fn, ast.Attribute) and fn.attr in DYNAMIC_ATTRS:
            self.dynamic.append(f"line {node.lineno}: calls {fn.attr}()")
        elif isinstance(fn, ast.Attribute) and fn.attr in ("run_line_magic", "run_cell_magic") and node.args:
            first = node.args[0]
            magic = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""
            if magic in DYNAMIC_MAGICS:
                self.dynamic.append(f"line {node.lineno}: runs %{magic}")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            text = node.value
            if "solutions" in text and (".md" in text or ".ipynb" in text or "/" in text or "\\" in text):
                self.dynamic.append(f"line {node.lineno}: refers to the solutions ({text[:60]!r})")
            if text.startswith("mlc_lab.") and " " not in text:
                self.names.add(text)  # getattr(importlib.import_module("mlc_lab.x"), ...) spelled as a string


def inspect_cells(cells: Iterable[str]) -> References:
    """All references of all cells (a cell that does not parse is skipped: it fails when run)."""
    refs = References()
    for source in cells:
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            continue
        refs.visit(tree)
    return refs


@functools.lru_cache(maxsize=4096)
def _resolve(dotted: str) -> Any:
    """The object a dotted `mlc_lab.` path names, importing the longest module prefix; None if none."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # noqa: BLE001 - not a module (or not importable): try a shorter prefix
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return None
        return obj
    return None


def delegations(refs: References, forbids: Iterable[str]) -> list[str]:
    """The forbidden library objects (by identity, so re-exports count) the cells refer to."""
    found = []
    for forbidden in forbids:
        target = _resolve(forbidden)
        module = forbidden.rsplit(".", 1)[0]
        hits = [n for n in refs.names if n == forbidden or n.startswith(forbidden + ".")]
        if not hits and target is not None:
            hits = [n for n in refs.names if n.startswith("mlc_lab.") and _same(_resolve(n), target)]
        if not hits and module in refs.star_imports:
            hits = [f"{module}.*"]
        if hits:
            found.append(f"uses the library's own `{forbidden}` ({sorted(hits)[0]}): the exercise asks you to write it")
    return found


def _same(a: Any, b: Any) -> bool:
    return a is not None and a is b


def defining_cell(cells: list[str], name: str) -> int | None:
    """The index of the last cell that binds `name` at top level (def, class, assignment, import)."""
    found = None
    for index, source in enumerate(cells):
        try:
            tree = ast.parse(python_source(source))
        except (SyntaxError, ValueError):
            if name in source:
                found = index
            continue
        for node in tree.body:
            if _binds(node, name):
                found = index
    return found


def _binds(node: ast.stmt, name: str) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name == name
    if isinstance(node, ast.Import | ast.ImportFrom):
        return any((a.asname or a.name.split(".")[0]) == name for a in node.names)
    if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t))
    return False


# -- files the notebook must not change ------------------------------------------------------------


def digest_tree(root: str | os.PathLike[str]) -> dict[str, str]:
    """relative path -> sha256 of every file under `root` (caches left out)."""
    root = Path(root)
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def is_checkout(root: str | os.PathLike[str]) -> bool:
    """A package inside a git working tree is being developed: others edit it while we grade."""
    return any((p / ".git").exists() for p in Path(root).resolve().parents)


class Guard:
    """A snapshot of files (the installed package) to verify, and restore when `restore` is set.

    A development checkout is never restored (people edit it while a class is graded, and a
    restore would undo their work); a change is then reported, and `git diff` shows it.
    """

    def __init__(self, root: str | os.PathLike[str], keep: str | os.PathLike[str], restore: bool | None = None) -> None:
        self.root, self.keep = Path(root), Path(keep)
        self.restores = (not is_checkout(self.root)) if restore is None else restore
        self.digest = digest_tree(self.root)
        if self.restores:
            shutil.copytree(self.root, self.keep, ignore=shutil.ignore_patterns("__pycache__"))

    def changes(self) -> list[str]:
        now = digest_tree(self.root)
        return sorted(p for p in set(now) | set(self.digest) if now.get(p) != self.digest.get(p))

    def restore(self, changed: list[str]) -> None:
        if not self.restores:
            self.digest = digest_tree(self.root)  # report each change once
            return
        for rel in changed:
            target, saved = self.root / rel, self.keep / rel
            if saved.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(saved, target)
            elif target.exists():
                target.unlink()
        for cache in self.root.rglob("__pycache__"):
            shutil.rmtree(cache, ignore_errors=True)  # a planted .pyc must not outlive the restore
