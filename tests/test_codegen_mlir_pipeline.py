"""The MLIR pass pipeline stage by stage, the xDSL pass, and the comparison with torch-mlir."""

from __future__ import annotations

import numpy as np
import pytest

from mlc_lab import zoo
from mlc_lab.codegen.mlir import build, emit
from mlc_lab.codegen.mlir.custom_pass import fold_trivial_arith
from mlc_lab.codegen.mlir.execute import compile_iree
from mlc_lab.codegen.mlir.pipeline import STAGES, generic_tile_sizes, lower_stages, tiling_script
from mlc_lab.interop.mlir_compare import IRSize, compare_zoo_model, format_table
from mlc_lab.ir import GraphBuilder


@pytest.fixture(scope="module")
def mlp_stages():
    return lower_stages(emit(zoo.load("mlp").graph()))


def test_stage_list_runs_in_order(mlp_stages):
    assert [name for name, _ in mlp_stages] == ["input"] + [s.name for s in STAGES]


def test_each_stage_changes_the_ir_as_named(mlp_stages):
    ir = dict(mlp_stages)
    assert "tensor<" in ir["input"] and "scf.for" not in ir["input"]
    assert ir["elementwise-fusion"].count("linalg.generic") < ir["canonicalize"].count("linalg.generic")
    assert "scf.for" in ir["tiling"] and "tensor<" in ir["tiling"]
    assert "memref<" in ir["bufferize"] and "tensor.empty" not in ir["bufferize"]
    assert "linalg." not in ir["loops"].replace("linalg.yield", "")
    assert "llvm.func" in ir["llvm"] and "scf.for" not in ir["llvm"]


def test_stage_text_elides_weights(mlp_stages):
    assert all(len(text) < 200_000 for _, text in mlp_stages)
    assert "__elided__" in mlp_stages[0][1]


def test_generic_tile_sizes():
    assert generic_tile_sizes(["parallel", "parallel", "reduction"]) == (8, 32, 0)
    assert generic_tile_sizes(["parallel", "parallel", "parallel", "reduction"]) == (1, 8, 32, 0)
    assert generic_tile_sizes(["parallel", "reduction"]) == (32, 0)
    assert "transform.structured.tile_using_for" in tiling_script()


# -- the xDSL pass ----------------------------------------------------------------------------------
def trivial_arith_graph():
    b = GraphBuilder("demo")
    x = b.input("x", (4, 8))
    y = b.mul(x, b.constant(np.ones(8, np.float32), name="ones"))  # x * 1
    return b.build(b.div(b.relu(y), b.constant(np.float32(4.0), name="four")))  # relu(x) / 4


def test_custom_pass_rewrites_as_claimed_and_still_runs():
    graph = trivial_arith_graph()
    before = emit(graph)
    after = fold_trivial_arith(before)
    b, a = before.op_counts(), after.op_counts()
    assert b["arith.divf"] == 1 and "arith.divf" not in a  # x / 4 -> x * 0.25
    assert a["linalg.generic"] == b["linalg.generic"] - 1  # the x * 1 generic is gone
    assert "2.500000e-01" in str(after)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(compile_iree(after)(x)[0], graph(x)[0], atol=1e-6)


def test_custom_pass_on_the_transformer_keeps_results():
    model = zoo.load("transformer_block")
    before = emit(model.graph())
    after = fold_trivial_arith(before)
    assert after.op_counts()["arith.divf"] < before.op_counts()["arith.divf"]
    inputs = model.numpy_inputs()
    np.testing.assert_allclose(compile_iree(after)(*inputs)[0], model.graph()(*inputs)[0], atol=1e-4)


# -- torch-mlir next to ours --------------------------------------------------------------------------
def test_compare_with_torch_mlir():
    rows = compare_zoo_model("small_cnn")
    stages = [r[0] for r in rows]
    assert stages[:2] == ["torch dialect", "linalg on tensors"] and stages[-1] == "llvm"
    assert rows[0][1] is None and isinstance(rows[0][2], IRSize)
    assert all(r[1].ops > 0 and r[2].ops > 0 for r in rows[1:])
    assert "torch-mlir" in format_table(rows)


def test_torch_mlir_output_runs_through_our_iree_path():
    from mlc_lab.interop.mlir_compare import torch_mlir_module

    model = zoo.load("mlp")
    theirs = torch_mlir_module(model.module, model.example_inputs)
    got = compile_iree(theirs)(*model.numpy_inputs())[0]
    np.testing.assert_allclose(got, model.torch_outputs()[0], atol=1e-4)
    np.testing.assert_allclose(build(model.graph())(*model.numpy_inputs())[0], got, atol=1e-4)
