"""The external importers the IR chapter relies on still work on this pinned stack (TVM Relax, torch-mlir)."""

import torch
import torch.nn as nn

from mlc_lab import interop


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)), (torch.randn(1, 8),)


def test_relax_import_counts_ops():
    model, args = mlp()
    counts = interop.relax_op_counts(interop.relax_from_torch(model, args))
    assert counts["matmul"] == 2 and counts["nn.relu"] == 1


def test_mlir_import_both_levels():
    model, args = mlp()
    torch_ir = interop.mlir_from_torch(model, args, output_type="torch")
    linalg_ir = interop.mlir_from_torch(model, args)
    assert interop.mlir_op_counts(torch_ir)["torch.aten.relu"] == 1
    assert interop.mlir_op_counts(linalg_ir)["linalg.matmul"] == 2
    assert "dialect_resources" not in linalg_ir  # weight blobs are cut from the text
