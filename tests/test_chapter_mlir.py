"""The MLIR chapter's helpers: FileCheck from Python, IR listings that wrap instead of cutting, the
transform-dialect applier, the affine+vector JIT path, and the directives of exercise 07.4's check.
(Solution passes / untouched exercise fails: tests/test_course_grading.py; wrong answers refused:
tests/test_grading_wrong_answers.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import mlc_lab
from mlc_lab.codegen.mlir import MLIRModule, MLIRVerificationError, emit
from mlc_lab.codegen.mlir.affine_vector import AFFINE_VECTOR_STAGES, compile_affine_vector, jit_module
from mlc_lab.codegen.mlir.custom_pass import rewrite_text
from mlc_lab.codegen.mlir.filecheck import FileCheckFailure, filecheck
from mlc_lab.codegen.mlir.listing import between, show, wrap
from mlc_lab.codegen.mlir.pipeline import lower
from mlc_lab.codegen.mlir.transform import apply_transform
from mlc_lab.grading.checks.ch07_mlir import _dense_chain, fold_bias_checks
from mlc_lab.ir import GraphBuilder

TILE_MATMUL = """
transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {
  %m = transform.structured.match ops{["linalg.matmul"]} in %root : (!transform.any_op) -> !transform.any_op
  %t, %i, %j = transform.structured.tile_using_for %m tile_sizes [2, 8]
      : (!transform.any_op) -> (!transform.any_op, !transform.any_op, !transform.any_op)
  transform.yield
}
"""


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    b = GraphBuilder("tiny")
    x = b.input("x", (4, 8))
    h = b.bias_add(
        b.dense(x, b.constant(rng.standard_normal((16, 8)).astype(np.float32), "w")),
        b.constant(rng.standard_normal(16).astype(np.float32), "bias"),
        axis=-1,
    )
    return b.build(b.relu(h))


# -- FileCheck ------------------------------------------------------------------------------------------
OUTPUT = "func.func @f(%a: f32, %b: f32)\n  %0 = arith.addf %a, %a : f32\n  %1 = arith.mulf %0, %b : f32\n"


def test_filecheck_accepts_matching_output_with_captures():
    filecheck(OUTPUT, "// CHECK-LABEL: @f\n// CHECK: %[[S:[0-9]+]] = arith.addf\n// CHECK-NEXT: arith.mulf %[[S]]")


@pytest.mark.parametrize(
    "checks, reason",
    [
        ("// CHECK: arith.subf", 'match "arith.subf"'),
        ("// CHECK: arith.addf\n// CHECK-NOT: arith.mulf", "excluded string found"),
        ("// CHECK: %[[S:[0-9]+]] = arith.addf\n// CHECK-NEXT: arith.mulf %b", "arith.mulf %b"),
    ],
)
def test_filecheck_failure_says_which_directive_failed(checks, reason):
    with pytest.raises(FileCheckFailure, match="FileCheck: ") as failed:
        filecheck(OUTPUT, checks)
    assert reason in str(failed.value) and "\x1b[" not in str(failed.value)


# -- listings --------------------------------------------------------------------------------------------
def test_wrap_keeps_every_character_and_the_width(tiny):
    text = emit(tiny).asm()
    wrapped = wrap(text, width=80)
    assert max(len(line) for line in text.splitlines()) > 120  # there was something to wrap
    too_long = [line for line in wrapped.splitlines() if len(line) > 80]
    assert all(" " not in line.strip() for line in too_long), too_long  # only unbreakable tokens may be longer
    assert wrapped.split() == text.split()  # only whitespace changed
    assert any(line.strip().startswith("ins(") for line in wrapped.splitlines())  # broken at operand lists


def test_between_cuts_blocks_and_names_a_missing_marker(tiny):
    module = emit(tiny)
    generic = between(module, "linalg.generic", "} -> tensor", occurrence=-1)
    assert "arith.maximumf" in generic and "arith.addf" not in generic
    assert between(show(module, width=None), "func.func", None).rstrip().endswith("}")
    with pytest.raises(ValueError, match="'linalg.conv' does not occur"):
        between(module, "linalg.conv")
    with pytest.raises(ValueError, match="occurs 2 times"):
        between(module, "linalg.generic", occurrence=2)


# -- transform dialect -----------------------------------------------------------------------------------
def test_apply_transform_tiles_the_matmul_and_removes_the_script(tiny):
    module = emit(tiny)
    tiled = apply_transform(module, TILE_MATMUL)
    counts = tiled.op_counts()
    assert counts.get("scf.for") == 2 and counts.get("linalg.matmul") == 1
    assert not any(op.startswith("transform.") for op in counts)
    assert "transform.with_named_sequence" not in tiled.text
    filecheck(show(tiled, width=None), "// CHECK: scf.for\n// CHECK: tensor.extract_slice %arg0[%{{.*}}, 0] [2, 8]")
    assert "scf.for" not in module.text  # the input is left as it was
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    got = jit_module(tiled, [((4, 8), "float32")], [((4, 16), "float32")])(x)[0]
    np.testing.assert_allclose(got, mlc_lab.interpret(tiny, x)[0], rtol=1e-5, atol=1e-5)


def test_apply_transform_reports_a_broken_script(tiny):
    with pytest.raises(MLIRVerificationError, match="transform script does not parse"):
        apply_transform(emit(tiny), TILE_MATMUL.replace("tile_sizes [2, 8]", "tile_sizes [2, 8"))
    with pytest.raises(MLIRVerificationError, match="no transform.named_sequence"):
        apply_transform(emit(tiny), "")


# -- affine + vector -------------------------------------------------------------------------------------
def test_affine_vector_path_vectorizes_and_matches_the_interpreter(tiny):
    by_stage = dict(lower(emit(tiny), AFFINE_VECTOR_STAGES[:-1]))
    assert "affine.for" in by_stage["affine"].op_counts()
    vector_ops = by_stage["vector"].op_counts()
    assert vector_ops.get("vector.transfer_read", 0) >= 3 and "affine.load" not in vector_ops
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(compile_affine_vector(tiny)(x)[0], mlc_lab.interpret(tiny, x)[0], rtol=1e-5, atol=1e-5)


# -- exercise 07.4's directives and the xDSL clean-up it relies on -------------------------------------------
def test_fold_bias_directives_refuse_the_unfolded_module():
    text = emit(_dense_chain("chain", 3, [5, 7, 4], seed=0)).text
    listing = MLIRModule(text).module.operation.get_asm(large_elements_limit=16)
    with pytest.raises(FileCheckFailure):
        filecheck(listing, fold_bias_checks(3, [5, 7, 4]))


def test_rewrite_text_removes_ops_left_unused_but_keeps_buffer_writes():
    text = """
func.func @main(%x: tensor<2x2xf32>, %m: memref<2xf32>) -> tensor<2x2xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<2x2xf32>
  %unused = linalg.fill ins(%zero : f32) outs(%e : tensor<2x2xf32>) -> tensor<2x2xf32>
  linalg.fill ins(%zero : f32) outs(%m : memref<2xf32>)
  return %x : tensor<2x2xf32>
}
"""
    counts = MLIRModule(rewrite_text(text, ())).op_counts()
    assert counts.get("linalg.fill") == 1 and "tensor.empty" not in counts  # the memref fill writes memory
