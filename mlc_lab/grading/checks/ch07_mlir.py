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


def _dense_chain(name: str, batch: int, widths: list[int], seed: int, combine: str = "bias_add"):
    """x -> (dense -> `combine` with a bias -> relu) per layer, the last layer without relu."""
    from mlc_lab.ir import GraphBuilder

    rng = np.random.default_rng(seed)
    b = GraphBuilder(name)
    h = b.input("x", (batch, widths[0]))
    for i, (k, n) in enumerate(zip(widths, widths[1:])):
        w = b.constant((rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32), f"w{i}")
        bias = b.constant(rng.standard_normal(n).astype(np.float32), f"b{i}")
        d = b.dense(h, w, name=f"fc{i}")
        h = b.bias_add(d, bias, axis=-1) if combine == "bias_add" else b.sub(d, bias)
        if i < len(widths) - 2:
            h = b.relu(h)
    return b.build(h)


def zoo_module_text(name: str = "mlp") -> str:
    """The MLIR text `emit` writes for a zoo model: what exercise 4's pass runs on. (Exercise 1 forbids
    `emit` itself, which would write its relu module for it; a zoo model's text cannot.)"""
    from mlc_lab import zoo
    from mlc_lab.codegen.mlir import emit

    return emit(zoo.load(name).graph()).text


def fold_bias_checks(batch: int, widths: list[int]) -> str:
    """FileCheck directives for a dense chain after the fold: per layer, the bias broadcast into the
    accumulator by a copy generic, then the matmul accumulating into exactly that value."""
    lines = ["// CHECK-LABEL: func.func @main"]
    for i, (k, n) in enumerate(zip(widths, widths[1:])):
        lines += [
            f"// CHECK: %[[INIT{i}:[^ ]+]] = linalg.generic {{{{.*}}}} ins(%{{{{[^ ]+}}}} : tensor<{n}xf32>)"
            f" outs(%{{{{[^ ]+}}}} : tensor<{batch}x{n}xf32>)",
            "// CHECK-NEXT: ^bb0(%[[IN:[^:]+]]: f32, %{{[^:]+}}: f32):",
            "// CHECK-NEXT: linalg.yield %[[IN]] : f32",
            f"// CHECK: linalg.matmul ins(%{{{{[^ ]+}}}}, %{{{{[^ ]+}}}} : tensor<{batch}x{k}xf32>,"
            f" tensor<{k}x{n}xf32>) outs(%[[INIT{i}]] : tensor<{batch}x{n}xf32>)",
        ]
    return "\n".join([*lines, "// CHECK: return"])


NO_ZERO_ACCUMULATORS = "// CHECK-NOT: linalg.fill\n// CHECK-NOT: arith.addf"
SUB_KEPT = "// CHECK: linalg.fill\n// CHECK: linalg.matmul\n// CHECK: arith.subf"


def _listing(module) -> str:
    """The bindings' printout with plain SSA numbers: what the FileCheck directives match."""
    return module.module.operation.get_asm(large_elements_limit=16)


@check(points=4)
def check_fold_bias_into_matmul(g: Grading) -> None:
    """fold_bias_into_matmul(text): on the book's own emitted MLIR (zoo mlp, a random dense chain),
    each bias add folds into its matmul's accumulator (FileCheck on the output), the result computes
    what the interpreter computes (lowered by the upstream pipeline and JIT-compiled), and `x @ W - b`
    is left alone."""
    from mlc_lab.codegen.mlir import MLIRModule, emit
    from mlc_lab.codegen.mlir.affine_vector import jit_module
    from mlc_lab.codegen.mlir.filecheck import filecheck
    from mlc_lab.grading.probes import zoo_graph
    from mlc_lab.ir import interpret

    fn = g.need("fold_bias_into_matmul")
    batch, hidden = int(g.rng.integers(2, 6)), int(g.rng.integers(3, 20))
    widths = [int(g.rng.integers(3, 20)), hidden, int(g.rng.integers(2, 12))]
    cases = [
        ("the zoo's mlp", zoo_graph("mlp"), 1, [784, 256, 128, 10], True),  # cached: tracing costs seconds
        (f"a dense chain {widths}, batch {batch}", _dense_chain("chain", batch, widths, 7), batch, widths, True),
        (
            f"x @ W - b (a subtraction, not a bias add), widths {widths[:2]}",
            _dense_chain("sub", batch, widths[:2], 8, combine="sub"),
            batch,
            widths[:2],
            False,
        ),
    ]
    for label, graph, m, dims, folds in cases:
        with g.case(f"fold_bias_into_matmul on {label}") as case:
            text = fn(emit(graph).text)
            assert isinstance(text, str), f"fold_bias_into_matmul must return MLIR text, not a {type(text).__name__}"
            after = MLIRModule(text)  # raises with MLIR's diagnostics if the output does not parse or verify
            listing = _listing(after)
            case.got = "\n".join(line for line in listing.splitlines() if "linalg." in line or "arith.subf" in line)
            if folds:
                fills = after.op_counts().get("linalg.fill", 0)
                assert not fills, (
                    f"{fills} linalg.fill left: each matmul should accumulate into its broadcast bias, not into zeros"
                )
                filecheck(listing, NO_ZERO_ACCUMULATORS, "no zero accumulators, no bias add")
                filecheck(listing, fold_bias_checks(m, dims), "bias broadcast, then matmul into it")
            else:
                filecheck(listing, SUB_KEPT, "x @ W - b must stay a subtraction")
            x = g.rng.standard_normal(graph.inputs[0].shape).astype(np.float32)
            signature = lambda nodes: [(n.shape, n.dtype) for n in nodes]  # noqa: E731
            (got,) = jit_module(after, signature(graph.inputs), signature(graph.outputs))(x)
            (want,) = interpret(graph, x)
            err = float(np.abs(got - want).max())
            assert err <= 1e-4 * (1 + float(np.abs(want).max())), (
                f"the rewritten module computes something different: max |compiled - interpreter| = {err:.3g}"
            )
