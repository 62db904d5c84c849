"""Official checks for exercises/07_mlir.md (the MLIR pipeline)."""

from __future__ import annotations

import re

import numpy as np

from mlc_lab.grading.session import Grading, check

ITERATORS = re.compile(r"iterator_types\s*=\s*\[([^\]]*)\]")


def _iterator_types(asm: str) -> list[list[str]]:
    """Each linalg.generic's iterator types, read from the verified module's printed form."""
    return [re.findall(r"parallel|reduction|window", m.group(1)) for m in ITERATORS.finditer(asm)]


@check(points=3, forbids=("mlc_lab.codegen.mlir.emit",))
def check_relu_generic(g: Grading) -> None:
    """relu_generic_text(rows, cols): a verified func @main computing max(x, 0) with one linalg.generic
    whose two iterators are both parallel (an elementwise op has no reduction)."""
    from mlc_lab.codegen.mlir import MLIRModule
    from mlc_lab.codegen.mlir.execute import compile_iree

    fn = g.need("relu_generic_text")
    for rows, cols in [(3, 5), (8, 16), (int(g.rng.integers(2, 12)), int(g.rng.integers(2, 12)))]:
        with g.case(f"relu_generic_text({rows}, {cols})") as case:
            text = fn(rows, cols)
            assert isinstance(text, str), f"relu_generic_text must return a string, not a {type(text).__name__}"
            case.got = text
            module = MLIRModule(text)  # raises with MLIR's diagnostics if it does not parse or verify
            counts = module.op_counts()
            assert counts.get("linalg.generic") == 1, f"expected one linalg.generic, the module has {counts}"
            iterators = _iterator_types(module.asm())
            assert iterators == [["parallel", "parallel"]], (
                f"iterator_types are {iterators[0] if iterators else '?'}: relu is elementwise, both loops are parallel"
            )
            x = g.rng.standard_normal((rows, cols)).astype(np.float32)
            (got,) = compile_iree(module)(x)
            assert np.array_equal(got, np.maximum(x, 0)), f"for a {rows}x{cols} input the result is not max(x, 0)"


def _sub_zero_graph(rows: int, cols: int):
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("sub_zero")
    x = b.input("x", (rows, cols))
    return b.build(b.relu(b.sub(x, b.constant(0.0, "zero"))))


def _sub_one_graph(rows: int, cols: int):
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("sub_one")
    x = b.input("x", (rows, cols))
    return b.build(b.relu(b.sub(x, b.constant(1.0, "one"))))


@check(points=3)
def check_fold_sub_zero(g: Grading) -> None:
    """FoldSubZero: an xDSL RewritePattern turning `arith.subf x, 0.0` into x (and nothing else)."""
    from mlc_lab.codegen.mlir import MLIRModule
    from mlc_lab.codegen.mlir.execute import compile_iree
    from mlc_lab.ir import interpret

    g.need("FoldSubZero")
    rows, cols = int(g.rng.integers(2, 9)), int(g.rng.integers(2, 17))
    for build, folds in ((_sub_zero_graph, True), (_sub_one_graph, False)):
        graph = build(rows, cols)
        label = f"the folding patterns plus FoldSubZero on relu(x - {0 if folds else 1}) ({rows}x{cols})"
        with g.case(label) as case:
            text = g.probe("fold_sub_zero", "FoldSubZero", graph)
            assert isinstance(text, str), "the rewrite did not produce MLIR text"
            case.got = text
            after = MLIRModule(text)
            counts = after.op_counts()
            if folds:
                assert "arith.subf" not in counts, f"the subtraction of zero is still there: {counts}"
                assert counts.get("linalg.generic") == 1, (
                    f"the copy generic left behind should be dropped too, got {counts}"
                )
            else:
                assert counts.get("arith.subf") == 1, f"x - 1.0 must stay a subtraction, op counts are {counts}"
            x = g.rng.standard_normal((rows, cols)).astype(np.float32)
            (got,) = compile_iree(after)(x)
            assert np.array_equal(got, interpret(graph, x)[0]), "the rewritten module computes something different"


def normalize_pipeline(text: str) -> str:
    """The pass list inside a `builtin.module(...)` wrapper, if the student wrote one (the stage adds it)."""
    text = text.strip()
    match = re.fullmatch(r"builtin\.module\((.*)\)", text, flags=re.S)
    return match.group(1).strip() if match else text


@check(points=2, forbids=("mlc_lab.codegen.mlir.pipeline.STAGES", "mlc_lab.codegen.mlir.pipeline.lower_to_llvm"))
def check_loops_pipeline(g: Grading) -> None:
    """loops_pipeline(): a pass pipeline string that turns bufferized linalg into scf.for loops
    (with or without the `builtin.module(...)` around it)."""
    from mlc_lab import zoo
    from mlc_lab.codegen.mlir import emit
    from mlc_lab.codegen.mlir.pipeline import STAGES, Stage, lower

    fn = g.need("loops_pipeline")
    with g.case("loops_pipeline() after bufferizing the zoo's mlp") as case:
        pipeline = fn()
        assert isinstance(pipeline, str), "loops_pipeline() must return a string"
        case.got = pipeline
        upto_bufferize = [s for s in STAGES if s.name not in ("loops", "llvm")]
        stages = [*upto_bufferize, Stage("yours", normalize_pipeline(pipeline))]
        _, module = lower(emit(zoo.load("mlp").graph()), stages)[-1]
        counts = module.op_counts()
        linalg = sorted(op for op in counts if op.startswith("linalg."))
        assert not linalg, f"linalg ops remain after your pipeline: {linalg}"
        assert counts.get("scf.for", 0) >= 3, f"expected scf.for loop nests, op counts are {counts}"
