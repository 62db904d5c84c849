"""The same PyTorch model in TVM's and MLIR's own IRs, for side-by-side comparison with ours.

These call the real importers: `tvm.relax.frontend.torch.from_exported_program` (Relax) and
`torch_mlir.fx.export_and_import` (MLIR's torch dialect, lowered to linalg on tensors).
Submodules: `relax_reference` runs TVM's whole Relax pipeline on the model, `mlir_compare` sets our MLIR
beside torch-mlir's stage by stage, `torch_dynamo` makes mlc_lab a `torch.compile` backend. A driver
layer: it calls the real compilers and our core; the core never imports it.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Any

_RESOURCES = re.compile(r"\{-#.*?#-\}", re.S)


def _export(model: Any, example_inputs: tuple) -> Any:
    import torch

    from mlc_lab._deps import require_triton_loadable

    require_triton_loadable(f"exporting {type(model).__name__}")

    return torch.export.export(model.eval(), tuple(example_inputs))


def relax_from_torch(model: Any, example_inputs: tuple) -> Any:
    """A TVM Relax IRModule (weights bound as constants); `.script()` prints it as TVMScript."""
    from tvm.relax.frontend.torch import from_exported_program

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return from_exported_program(_export(model, example_inputs))


def mlir_from_torch(model: Any, example_inputs: tuple, output_type: str = "linalg-on-tensors") -> str:
    """MLIR text from torch-mlir's FX importer; `output_type` is "torch" or "linalg-on-tensors".

    The weight blobs (a `dialect_resources` section of hex) are cut from the text: they are data, not IR.
    """
    from torch_mlir import fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = fx.export_and_import(model.eval(), *example_inputs, output_type=output_type)
    return _RESOURCES.sub("", str(module)).rstrip() + "\n"


def mlir_op_counts(text: str) -> Counter:
    """Count MLIR operations by name (`linalg.matmul`, `torch.aten.relu`, ...) in printed IR."""
    ops = re.findall(r"^\s*(?:%[\w#:, %]+ = )?([a-z_]+\.[A-Za-z_.0-9]+[A-Za-z0-9])\b", text, re.M)
    return Counter(op for op in ops if not op.startswith(("func.func", "module")))


def relax_op_counts(module: Any) -> Counter:
    """Count Relax operator calls (`relax.matmul`, `relax.nn.relu`, ...) in a module's main function."""
    text = module.script()
    return Counter(re.findall(r"= R\.([a-z_.0-9]+)\(", text))
