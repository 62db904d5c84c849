"""The package's layering holds: import-linter's contracts pass, and no import cycle is left.

Contracts live in pyproject.toml ([tool.importlinter]); `make lint` runs them too. The cycle check uses
grimp (import-linter's graph library) over every import in mlc_lab, lazy ones included, TYPE_CHECKING
ones not: no module imports itself through others, and no package's children do either, once the
contract's declared exemptions (the thin `draw()` shortcuts into viz) are set aside.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")
pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def _exempt_edges() -> set[tuple[str, str]]:
    """The layers contract's ignore_imports, as (importer, imported) pairs: the one list of allowed upward imports."""
    (layers,) = [c for c in _config()["contracts"] if c["type"] == "layers"]
    return {tuple(part.strip() for part in line.split("->")) for line in layers.get("ignore_imports", [])}


def _package_graph() -> grimp.ImportGraph:
    return grimp.build_graph("mlc_lab", include_external_packages=False, exclude_type_checking_imports=True)


def _edges(graph: grimp.ImportGraph, exempt: set[tuple[str, str]]) -> dict[str, set[str]]:
    return {
        m: {t for t in graph.find_modules_directly_imported_by(m) if (m, t) not in exempt} for m in graph.modules
    }


def strongly_connected(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: every group of two or more nodes that reach each other (each a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def package_cycles(graph: grimp.ImportGraph, edges: Mapping[str, set[str]]) -> list[tuple[str, list[str]]]:
    """For each package, cycles among its direct children (a child standing for everything inside it)."""
    out = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        children = sorted(graph.find_children(package))

        def owner(module: str) -> str | None:
            return next((c for c in children if module == c or module.startswith(c + ".")), None)

        collapsed: dict[str, set[str]] = {c: set() for c in children}
        for importer, imported in ((a, b) for a, targets in edges.items() for b in targets):
            a, b = owner(importer), owner(imported)
            if a and b and a != b:
                collapsed[a].add(b)
        out += [(package, group) for group in strongly_connected(collapsed)]
    return out


def _describe(edges: Mapping[str, set[str]], group: list[str]) -> str:
    members = set(group)
    links = [f"{a} -> {b}" for a in group for b in sorted(edges[a]) if b in members]
    return "; ".join(links)


def test_lint_imports_keeps_every_contract():
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_through_others():
    graph = _package_graph()
    edges = _edges(graph, _exempt_edges())
    cycles = strongly_connected(edges)
    assert not cycles, "import cycles: " + " | ".join(_describe(edges, c) for c in cycles)


def test_no_package_level_cycles():
    graph = _package_graph()
    edges = _edges(graph, _exempt_edges())
    cycles = package_cycles(graph, edges)
    assert not cycles, "package cycles: " + " | ".join(f"in {p}: {' <-> '.join(g)}" for p, g in cycles)


def test_exemptions_are_only_thin_draw_methods():
    """Each allowed upward import is a lazy import inside a `draw` method, nothing at module level."""
    graph = _package_graph()
    for importer, imported in sorted(_exempt_edges()):
        (detail,) = graph.get_import_details(importer=importer, imported=imported)
        path = ROOT / Path(*importer.split(".")).with_suffix(".py")
        lines = path.read_text().splitlines()
        line = lines[detail["line_number"] - 1]
        assert line.startswith("        from mlc_lab.viz"), f"{importer}:{detail['line_number']}: {line!r}"
        enclosing = next(s for s in reversed(lines[: detail["line_number"] - 1]) if s.lstrip().startswith("def "))
        assert enclosing.lstrip().startswith("def draw("), f"{importer}: the exempt import is in {enclosing.strip()!r}"


def test_the_cycle_check_finds_a_cycle_and_lint_imports_a_violation(tmp_path):
    """The checks above can fail: a cycle added to the real graph is found, a broken contract is reported."""
    graph = _package_graph()
    graph.add_import(importer="mlc_lab.ir.types", imported="mlc_lab.passes.base")  # passes.base imports the IR
    edges = _edges(graph, set())
    assert any("mlc_lab.ir.types" in g and "mlc_lab.passes.base" in g for g in strongly_connected(edges))
    assert any(p == "mlc_lab" and {"mlc_lab.ir", "mlc_lab.passes"} <= set(g) for p, g in package_cycles(graph, edges))

    config = tmp_path / "contracts.toml"
    config.write_text(
        '[tool.importlinter]\nroot_package = "mlc_lab"\n\n[[tool.importlinter.contracts]]\nname = "upside down"\n'
        'type = "layers"\nlayers = ["mlc_lab.ir", "mlc_lab.passes"]\n'
    )
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1 and "upside down BROKEN" in result.stdout, result.stdout[-2000:]
    assert "mlc_lab.passes" in result.stdout and "is not allowed to import" in result.stdout


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b", "c"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["c", "d"], ["a", "b"]]),
    ],
)
def test_strongly_connected(edges, expected):
    assert sorted(strongly_connected(edges)) == sorted(expected)
