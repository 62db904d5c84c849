"""Official checks for exercises/06_mlir.md (the MLIR pipeline)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_relu_generic(ns: dict[str, Any]) -> None:
    """relu_generic_text(rows, cols): a verified func @main computing max(x, 0) with one linalg.generic."""
    from mlc_lab.codegen.mlir import MLIRModule
    from mlc_lab.codegen.mlir.execute import compile_iree

    fn = need(ns, "relu_generic_text")
    for rows, cols in [(3, 5), (8, 16)]:
        module = MLIRModule(fn(rows, cols))  # raises with MLIR's diagnostics if it does not parse or verify
        counts = module.op_counts()
        assert counts.get("linalg.generic") == 1, f"expected one linalg.generic, the module has {counts}"
        x = np.random.default_rng(rows).standard_normal((rows, cols)).astype(np.float32)
        (got,) = compile_iree(module)(x)
        assert np.array_equal(got, np.maximum(x, 0)), f"for a {rows}x{cols} input the result is not max(x, 0)"


def _sub_zero_graph():
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("sub_zero")
    x = b.input("x", (4, 8))
    return b.build(b.relu(b.sub(x, b.constant(0.0, "zero"))))


def check_fold_sub_zero(ns: dict[str, Any]) -> None:
    """FoldSubZero: an xDSL RewritePattern turning `arith.subf x, 0.0` into x."""
    from xdsl.pattern_rewriter import RewritePattern

    from mlc_lab.codegen.mlir import emit
    from mlc_lab.codegen.mlir.custom_pass import PATTERNS, fold_trivial_arith
    from mlc_lab.codegen.mlir.execute import compile_iree
    from mlc_lab.ir import interpret

    cls = need(ns, "FoldSubZero")
    assert isinstance(cls, type) and issubclass(cls, RewritePattern), "FoldSubZero must subclass xdsl RewritePattern"
    graph = _sub_zero_graph()
    before = fold_trivial_arith(emit(graph))
    assert before.op_counts().get("arith.subf") == 1, "test setup: expected one subf before your pattern"
    after = fold_trivial_arith(emit(graph), patterns=(*PATTERNS, cls))
    counts = after.op_counts()
    assert "arith.subf" not in counts, f"the subtraction of zero is still there: {counts}"
    assert counts.get("linalg.generic") == 1, f"the copy generic left behind should be dropped too, got {counts}"
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    (got,) = compile_iree(after)(x)
    assert np.array_equal(got, interpret(graph, x)[0]), "the rewritten module computes something different"


def check_loops_pipeline(ns: dict[str, Any]) -> None:
    """loops_pipeline(): a pass pipeline string that turns bufferized linalg into scf.for loops."""
    from mlc_lab import zoo
    from mlc_lab.codegen.mlir import emit
    from mlc_lab.codegen.mlir.pipeline import STAGES, Stage, lower

    pipeline = need(ns, "loops_pipeline")()
    assert isinstance(pipeline, str), "loops_pipeline() must return a string"
    upto_bufferize = [s for s in STAGES if s.name != "loops" and s.name != "llvm"]
    stages = [*upto_bufferize, Stage("yours", pipeline)]
    _, module = lower(emit(zoo.load("mlp").graph()), stages)[-1]
    counts = module.op_counts()
    linalg = sorted(op for op in counts if op.startswith("linalg."))
    assert not linalg, f"linalg ops remain after your pipeline: {linalg}"
    assert counts.get("scf.for", 0) >= 3, f"expected scf.for loop nests, op counts are {counts}"
