"""The upstream path through the `affine` and `vector` dialects: bufferize, affine loops, vectorize, JIT.

`STAGES` (pipeline.py) lowers linalg straight to `scf.for` loops of scalar code. This variant goes
through the dialects in between: `convert-linalg-to-affine-loops` gives `affine.for` nests whose
bounds and subscripts are affine functions of the loop variables (so the compiler can reason about
them exactly), and `affine-super-vectorize` turns a parallel loop over the last dimension into operations on
`vector<8xf32>` values (`vector.transfer_read`/`transfer_write` move whole vectors between memory and
registers). The result is JIT-compiled by MLIR's ExecutionEngine like `compile_jit`.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlc_lab.codegen.mlir.execute import JITFunction
from mlc_lab.codegen.mlir.module import MLIRModule
from mlc_lab.codegen.mlir.pipeline import BUFFERIZE, STAGES, TO_LLVM, Stage, lower_to_llvm
from mlc_lab.ir import Graph

#: Vector width of the super-vectorizer, in f32 lanes (8 x 32 bits = one AVX2 register).
VECTOR_WIDTH = 8

AFFINE_VECTOR_STAGES: list[Stage] = [
    *[s for s in STAGES if s.name in ("canonicalize", "elementwise-fusion")],
    Stage("bufferize", BUFFERIZE, "tensors become memrefs; results become out-parameters"),
    Stage("affine", "func.func(convert-linalg-to-affine-loops),canonicalize", "linalg ops become affine.for nests"),
    Stage(
        "vector",
        f"func.func(affine-super-vectorize{{virtual-vector-size={VECTOR_WIDTH}}}),canonicalize",
        f"loops over the last dimension step by {VECTOR_WIDTH} on vector<{VECTOR_WIDTH}xf32> values",
    ),
    Stage(
        "llvm",
        "func.func(convert-vector-to-scf),lower-affine,convert-vector-to-llvm," + TO_LLVM,
        "vector transfers and affine loops to the LLVM dialect",
    ),
]


def compile_affine_vector(graph: Graph, opt_level: int = 2) -> JITFunction:
    """Emit `graph`, lower it through affine loops and the super-vectorizer, and JIT it."""
    from mlc_lab.codegen.mlir import emit

    llvm = lower_to_llvm(emit(graph), AFFINE_VECTOR_STAGES)
    sig = lambda nodes: [(n.shape, n.dtype) for n in nodes]  # noqa: E731
    return JITFunction(llvm, sig(graph.inputs), sig(graph.outputs), opt_level=opt_level)


def jit_module(
    module: MLIRModule,
    inputs: Sequence[tuple[tuple[int, ...], str]],
    outputs: Sequence[tuple[tuple[int, ...], str]],
    stages: Sequence[Stage] = STAGES,
) -> JITFunction:
    """JIT a hand-written or transformed module (no graph behind it): `inputs`/`outputs` are (shape, dtype)."""
    return JITFunction(lower_to_llvm(module, stages), inputs, outputs)
