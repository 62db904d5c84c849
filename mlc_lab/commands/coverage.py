"""`mlc-lab coverage`: which real models import and run right, per backend, next to TVM's own importers.

    mlc-lab coverage --suite hf                                   # 7 HF architectures, tiny configs
    mlc-lab coverage --suite onnx-light --backends interpreter,tvm
    mlc-lab coverage --suite onnx-ops --models test_abs,test_add --json

Each model (from `mlc_lab.interop.model_suites`) is imported once by our frontend, compiled and run on
every backend asked for, and its outputs compared with its own framework's (PyTorch, onnxruntime, the
stored ONNX outputs, TensorFlow). Beside it, TVM's own importer (`from_exported_program` for PyTorch,
`from_onnx` for ONNX) imports, builds (`tvm.compile`, default pipeline), runs and is compared the same way.
A cell reads:

- pass: the outputs equal the reference (same count, shapes and dtypes; values within
  1e-4 of the output's scale + 1e-3 relative, exact for integers and bools);
- unsupported: the importer refused an op (our `UnsupportedOpError`; the missing ops are listed);
- fail: a wrong result or any other error (named);
- n/a: no such importer for that framework (TVM 0.27 has no Relax TensorFlow importer).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: the column for TVM's own importer, beside our backends
TVM_IMPORTER = "tvm-importer"
DEFAULT_BACKENDS = ("interpreter", "tvm", "mlir")
RELATIVE_TOLERANCE = 1e-4


@dataclass
class Outcome:
    """One cell: pass / unsupported / fail / n/a, what went wrong, and how long it took."""

    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class CoverageReport:
    """Rows of outcomes: model name -> column (backend, or TVM_IMPORTER) -> Outcome."""

    suite: str
    columns: list[str]
    rows: dict[str, dict[str, Outcome]] = field(default_factory=dict)

    def counts(self, column: str) -> dict[str, int]:
        """How many models got each status in `column`."""
        found: dict[str, int] = {}
        for cells in self.rows.values():
            status = cells[column].status
            found[status] = found.get(status, 0) + 1
        return found

    def format(self, details: bool = True) -> str:
        """The table as text: one row per model, a totals row, then what each non-passing cell hit."""
        width = max([len("model"), *map(len, self.rows)]) + 2
        cols = [max(len(c), 11) + 2 for c in self.columns]
        lines = ["model".ljust(width) + "".join(c.ljust(w) for c, w in zip(self.columns, cols))]
        for name, cells in self.rows.items():
            lines.append(name.ljust(width) + "".join(cells[c].status.ljust(w) for c, w in zip(self.columns, cols)))
        total = len(self.rows)
        passed = [f"{self.counts(c).get('pass', 0)}/{total} pass" for c in self.columns]
        lines.append("total".ljust(width) + "".join(p.ljust(w) for p, w in zip(passed, cols)))
        if details:
            notes = [
                f"  {name} / {column}: {cell.status}: {cell.detail}"
                for name, cells in self.rows.items()
                for column, cell in cells.items()
                if cell.status != "pass" and cell.detail
            ]
            if notes:
                lines += ["", "what the other cells hit:", *notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "columns": self.columns,
            "rows": {n: {c: asdict(o) for c, o in cells.items()} for n, cells in self.rows.items()},
        }


# == comparing with the reference =================================================================
def compare(got: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> str | None:
    """None if `got` equals the reference; otherwise what differs (count, shape, dtype or values)."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, the reference has {len(expected)}"
    for i, (g, e) in enumerate(zip(got, expected)):
        g, e = np.asarray(g), np.asarray(e)
        if g.shape != e.shape:
            return f"output {i}: shape {list(g.shape)}, the reference's is {list(e.shape)}"
        if g.dtype != e.dtype:
            return f"output {i}: dtype {g.dtype}, the reference's is {e.dtype}"
        if e.dtype.kind in "biuU":
            if not np.array_equal(g, e):
                return f"output {i}: {int((g != e).sum())} of {e.size} values differ"
            continue
        if e.size == 0:
            continue
        finite = np.isfinite(e)
        if not np.array_equal(finite, np.isfinite(g)) or not np.array_equal(e[~finite], g[~finite], equal_nan=True):
            return f"output {i}: NaN/Inf where the reference has none (or the reverse)"
        scale = float(np.abs(e[finite]).max()) if finite.any() else 0.0
        error = np.abs(g[finite].astype(np.float64) - e[finite])
        floor = RELATIVE_TOLERANCE * scale if scale > 0 else 1e-7  # relative to the output's scale, however small
        if not np.all(error <= floor + 1e-3 * np.abs(e[finite])):
            return f"output {i}: wrong result, max error {float(error.max()):.2e} (output scale {scale:.2e})"
    return None


def _missing_ops(error: Exception) -> str:
    """The ops an UnsupportedOpError lists ("... cannot convert: a, b"), else its first line."""
    first = str(error).splitlines()[0]
    found = re.search(r"cannot convert: (.*)", first)
    return f"missing {found.group(1)}" if found else first


def _error(e: BaseException) -> str:
    """The error's type and first line (and the next one where the first only announces it: "...errors:")."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or [""]
    text = " ".join(lines[:2]) if lines[0].endswith(":") else lines[0]
    return f"{type(e).__name__}: {text[:200]}"


def _judge(build: Callable[[], Callable[[], Sequence[np.ndarray]]], reference: Sequence[np.ndarray]) -> Outcome:
    """build() compiles and returns the run; each stage's error is named with its stage."""
    start = time.perf_counter()
    try:
        run = build()
    except Exception as e:  # noqa: BLE001 - every other error is reported as this cell's failure
        return Outcome("fail", "build: " + _error(e), time.perf_counter() - start)
    try:
        problem = compare(run(), reference)
    except Exception as e:  # noqa: BLE001
        return Outcome("fail", "run: " + _error(e), time.perf_counter() - start)
    return Outcome("fail" if problem else "pass", problem or "", time.perf_counter() - start)


# == our stack and TVM's importers =================================================================
def _ours(sm: Any, backends: Sequence[str]) -> dict[str, Outcome]:
    import mlc_lab
    from mlc_lab.frontends.auto import import_model
    from mlc_lab.frontends.errors import UnsupportedOpError

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = import_model(sm.model, sm.example_inputs or sm.inputs)
    except UnsupportedOpError as e:
        return {b: Outcome("unsupported", _missing_ops(e), time.perf_counter() - start) for b in backends}
    except Exception as e:  # noqa: BLE001
        return {b: Outcome("fail", "import: " + _error(e), time.perf_counter() - start) for b in backends}
    def build(backend: str) -> Callable[[], Sequence[np.ndarray]]:
        return functools.partial(mlc_lab.compile(graph, backend=backend).run_numpy, *sm.inputs)

    return {b: _judge(functools.partial(build, b), sm.reference) for b in backends}


def _flatten(value: Any) -> list[np.ndarray]:
    if hasattr(value, "numpy"):
        return [value.numpy()]
    return [a for v in value for a in _flatten(v)]


#: how TVM's importers say they do not know an op
_TVM_UNSUPPORTED = re.compile(r"not supported|Unsupported function type|OpNotImplemented|not implemented", re.I)


def _tvm_importer(sm: Any) -> Outcome:
    if sm.framework not in ("torch", "onnx"):
        return Outcome("n/a", f"TVM 0.27 has no Relax importer for {sm.framework}")
    import tvm
    from tvm import relax

    from mlc_lab.codegen.target import resolve_target

    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if sm.framework == "torch":
                from mlc_lab.interop import relax_from_torch

                mod = relax_from_torch(sm.model, sm.example_inputs)
            else:
                from tvm.relax.frontend.onnx import from_onnx

                mod = from_onnx(sm.model)
    except Exception as e:  # noqa: BLE001
        status = "unsupported" if _TVM_UNSUPPORTED.search(str(e)) or type(e).__name__ == "OpNotImplemented" else "fail"
        return Outcome(status, "import: " + _error(e), time.perf_counter() - start)

    def build() -> Callable[[], list[np.ndarray]]:
        vm = relax.VirtualMachine(tvm.compile(mod, resolve_target("llvm")), tvm.cpu())
        args = [tvm.runtime.tensor(np.require(x, requirements="C")) for x in sm.inputs]
        return lambda: _flatten(vm["main"](*args))

    outcome = _judge(build, sm.reference)
    outcome.seconds += time.perf_counter() - start - outcome.seconds
    return outcome


def coverage(
    suite: str,
    models: Iterable[str] | None = None,
    backends: Sequence[str] = DEFAULT_BACKENDS,
    tvm_importer: bool = True,
    progress: bool = True,
) -> CoverageReport:
    """Run `models` (default: the whole suite) on `backends` and, if asked, TVM's importer; see the module doc."""
    from mlc_lab.api import BACKENDS
    from mlc_lab.interop.model_suites import BUILDERS, suite_names

    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend {unknown[0]!r}; backends: {', '.join(BACKENDS)}")
    known = suite_names(suite)
    names = list(models) if models is not None else known
    strangers = [n for n in names if n not in known]
    if strangers:
        raise ValueError(f"{strangers[0]!r} is not in suite {suite}")
    columns = [*backends, *([TVM_IMPORTER] if tvm_importer else [])]
    report = CoverageReport(suite, columns)
    from tqdm import tqdm

    for name in tqdm(names, desc=f"coverage {suite}", unit="model", disable=not progress, file=sys.stderr):
        try:
            sm = BUILDERS[suite](name)
        except Exception as e:  # noqa: BLE001 - the framework could not build its own model
            report.rows[name] = {c: Outcome("fail", "building the model: " + _error(e)) for c in columns}
            continue
        cells = _ours(sm, backends) if backends else {}
        if tvm_importer:
            cells[TVM_IMPORTER] = _tvm_importer(sm)
        report.rows[name] = cells
    return report


# == the command ===================================================================================
def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `coverage` to the `mlc-lab` command."""
    from mlc_lab.interop.model_suites import SUITES

    p = subparsers.add_parser(
        "coverage",
        help="real models (HF, ONNX, Keras) per backend: pass / unsupported / fail, beside TVM's importers",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("--suite", choices=SUITES, default="hf", help="which models (default hf)")
    p.add_argument(
        "--backends", type=_list, default=list(DEFAULT_BACKENDS), metavar="A,B", help="default interpreter,tvm,mlir"
    )
    p.add_argument("--models", type=_list, metavar="A,B", help="only these models of the suite")
    p.add_argument("--no-tvm-importer", action="store_true", help="skip TVM's own importer column")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_coverage)


def run_coverage(args: argparse.Namespace) -> int:
    from mlc_lab.api import BACKENDS

    unknown = [b for b in args.backends if b not in BACKENDS]
    if unknown:
        print(f"mlc-lab coverage: unknown backend {unknown[0]!r}; backends: {', '.join(BACKENDS)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        report = coverage(
            args.suite, args.models, args.backends, tvm_importer=not args.no_tvm_importer, progress=not args.no_progress
        )
    except ValueError as e:  # a model name the suite does not have
        print(f"mlc-lab coverage: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**report.to_dict(), "seconds": time.perf_counter() - start}, indent=2))
    else:
        print(report.format())
        print(f"\n{len(report.rows)} models in {time.perf_counter() - start:.0f} s")
    return 0
