"""Find the official checks of a notebook, and run one of them.

A notebook's checks are the `check_*` functions of one Python module, named after the notebook's
file stem: `exercises/01_ir.md` -> `mlc_lab.grading.checks.ch01_ir` (stems are not valid module
names when they start with a digit or contain '-'). Keeping them in the package, not in the
notebook, is what makes grading tamper-proof: the student's copy of a check is never used.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from mlc_lab.errors import MlcLabError

#: Where official checks live unless a caller points elsewhere (tests use a folder of their own).
DEFAULT_CHECKS = "mlc_lab.grading.checks"

CheckFn = Callable[[Any], None]  # takes a mlc_lab.grading.session.Grading


class NoChecksError(MlcLabError, LookupError):
    """The notebook has no official checks module."""


def module_name(notebook: str) -> str:
    """`01_ir` -> `ch01_ir`; `02-fusion` -> `ch02_fusion`; an already valid name gets `ch` too if digit-led."""
    stem = Path(notebook).stem if notebook.endswith((".md", ".ipynb", ".py")) else notebook
    name = re.sub(r"\W", "_", stem)
    return f"ch{name}" if name[:1].isdigit() or not name else name


def _is_folder(checks: str | os.PathLike[str]) -> bool:
    return isinstance(checks, os.PathLike) or os.sep in str(checks) or Path(str(checks)).is_dir()


def checks_file(notebook: str, checks: str | os.PathLike[str] | None = None) -> Path:
    """The source file of a notebook's checks module, found without importing it."""
    checks = checks or DEFAULT_CHECKS
    name = module_name(notebook)
    if _is_folder(checks):
        path = Path(checks) / f"{name}.py"
        if path.is_file():
            return path
    else:
        try:
            spec = importlib.util.find_spec(f"{checks}.{name}")
        except ModuleNotFoundError:
            spec = None
        if spec is not None and spec.origin:
            return Path(spec.origin)
    raise NoChecksError(f"no official checks for notebook {notebook!r}: expected module {name!r} in {checks}")


def list_checks(notebook: str, checks: str | os.PathLike[str] | None = None) -> list[str]:
    """Names of the `check_*` functions, in source order, read with `ast` (no import: checks may be heavy)."""
    path = checks_file(notebook, checks)
    st = path.stat()
    return list(_check_names(str(path), st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=64)
def _check_names(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Parsed once per version of the file (a class asks for every notebook, twice)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    return tuple(n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("check_"))


def load_checks(notebook: str, checks: str | os.PathLike[str] | None = None) -> ModuleType:
    """Import a notebook's checks module (from the package, or by path from a folder)."""
    checks = checks or DEFAULT_CHECKS
    if not _is_folder(checks):
        checks_file(notebook, checks)  # a clear NoChecksError rather than a bare ModuleNotFoundError
        return importlib.import_module(f"{checks}.{module_name(notebook)}")
    path = checks_file(notebook, checks)
    name = f"_mlc_lab_checks_{module_name(notebook)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def get_check(notebook: str, check: str, checks: str | os.PathLike[str] | None = None) -> CheckFn:
    module = load_checks(notebook, checks)
    fn = getattr(module, check, None)
    if not check.startswith("check_") or not callable(fn):
        raise NoChecksError(f"{module.__name__} has no check named {check!r}")
    return fn


def run_check(
    notebook: str, check: str, namespace: dict[str, Any], checks: str | os.PathLike[str] | None = None
) -> None:
    """Run one official check on a notebook's own globals (live feedback); AssertionError when it fails.

    This is what `check`-tagged cells in exercise and solution notebooks call, so that nbval on a
    solution exercises exactly the checks the grader will run:
    `run_check("01_ir", "check_fold", globals())`. It runs in the student's kernel, so it is only
    feedback: the official verdict comes from `mlc-lab grade`, which runs the same check against the
    notebook in an isolated process.
    """
    import secrets

    import numpy as np

    from mlc_lab.grading.scoring import evaluate
    from mlc_lab.grading.session import Grading, LocalStudent

    fn = get_check(notebook, check, checks)
    g = Grading(LocalStudent(namespace), np.random.default_rng(secrets.randbits(32)))
    result = evaluate(fn, g, check)
    for name, info in g.origins.items():
        module = str(info.get("module", ""))
        if module == "mlc_lab" or module.startswith("mlc_lab."):
            raise AssertionError(f"{check}: `{name}` is {module}'s own {info.get('kind')}: write your own")
    if not result.passed:
        lines = [f"{check}: {result.earned:g}/{result.points:g} points: {result.message}"]
        for case in [c for c in result.cases if not c.passed][:3]:
            lines.append(f"  - {case.input}: {case.message}")
            lines += [f"      expected: {case.expected}"] if case.expected else []
            lines += [f"      got:      {case.got}"] if case.got else []
        raise AssertionError("\n".join(lines))
    print(f"{check}: PASS ({result.earned:g}/{result.points:g} points)")
