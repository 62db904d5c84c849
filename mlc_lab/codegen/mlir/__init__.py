"""MLIR code generation: Graph -> func/linalg/tensor MLIR -> pass pipelines -> compiled CPU code.

>>> module = emit(graph)             # verified by MLIR's own verifier; print(module) shows it
>>> run = build(graph)               # compiled by IREE's llvm-cpu backend
>>> outputs = run(*numpy_inputs)     # NumPy in, NumPy out
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlc_lab.codegen.mlir.emit import MLIRLoweringError, emit_text
from mlc_lab.codegen.mlir.module import MLIRModule, MLIRVerificationError
from mlc_lab.ir import Graph

__all__ = ["MLIRLoweringError", "MLIRModule", "MLIRVerificationError", "build", "emit", "emit_text"]


def emit(graph: Graph, name: str = "main") -> MLIRModule:
    """The graph as a verified MLIR module (func + linalg + tensor + arith + math)."""
    return MLIRModule(emit_text(graph, name))


def build(graph: Graph, **options: object) -> Callable[..., list[np.ndarray]]:
    """Emit, compile with IREE (llvm-cpu, host CPU) and return `run(*arrays) -> list of arrays`."""
    from mlc_lab.codegen.mlir.execute import compile_iree

    return compile_iree(emit(graph), graph=graph, **options)
