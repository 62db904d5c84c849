"""Run a graph the way an accelerator does: GEMM ops through the lowered matrix product, the rest on a vector unit.

The numbers are real: a backend hands in the matrix-product routine it models (NumPy's for the fast
models, the cycle-accurate PE array for small systolic runs), so its `execute` returns outputs that
the tests compare with the reference interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlc_lab.backends.custom.lowering import gemm_operands, gemm_result, gemm_view
from mlc_lab.ir import Graph, Node
from mlc_lab.ir.interpreter import InterpreterError, check_inputs
from mlc_lab.ir.memory import check_fits, graph_bytes
from mlc_lab.ir.ops import OPS

#: (node, A [M x K], B [K x N]) -> A @ B, called once per independent product of a GEMM node.
GemmFn = Callable[[Node, np.ndarray, np.ndarray], np.ndarray]


def numpy_gemm(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a @ b


def run_bytes(graph: Graph) -> int:
    """Bytes `run_graph` allocates: every computed value (it keeps them all, as the interpreter does)
    plus the largest lowered GEMM's operands and product, alive while it runs (im2col copies a conv's
    input once per kernel tap)."""
    computed, _ = graph_bytes(graph, held=False)
    gemms = [(node, gemm_view(node)) for node in graph.nodes]
    scratch = max(
        (v.count * (v.m * v.k + v.k * v.n + v.m * v.n) * node.type.itemsize for node, v in gemms if v is not None),
        default=0,
    )
    return computed + scratch


#: (node, its input arrays) -> its output: an op a backend computes its own way (int8 on the systolic array).
KernelFn = Callable[[Node, list[np.ndarray]], np.ndarray]


def run_graph(
    graph: Graph, inputs: Sequence[Any], gemm: GemmFn = numpy_gemm, kernels: Mapping[str, KernelFn] | None = None
) -> list[np.ndarray]:
    """Evaluate `graph` on `inputs`; conv2d/dense/matmul go through im2col + `gemm`, ops in `kernels` through theirs."""
    kernels = kernels or {}
    env: dict[Node, np.ndarray] = dict(zip(graph.inputs, check_inputs(graph, tuple(inputs))))
    check_fits(run_bytes(graph), f"running graph {graph.name!r} on an accelerator model")
    for node in graph.nodes:
        if node.op == "input":
            continue
        args = [env[x] for x in node.inputs]
        if node.op in kernels:
            result = np.asarray(kernels[node.op](node, args))
        elif gemm_view(node) is not None:
            a, b = gemm_operands(node, *args)
            c = np.stack([gemm(node, a[i], b[i]) for i in range(a.shape[0])])
            result = gemm_result(node, c).astype(node.type.dtype, copy=False)
        else:
            try:
                result = np.asarray(OPS[node.op].compute(*args, **node.attrs))
            except Exception as e:
                raise InterpreterError(f"node %{node.name} ({node.op}) failed: {type(e).__name__}: {e}") from e
        if result.shape != node.type.shape:
            raise InterpreterError(f"node %{node.name} ({node.op}) produced {list(result.shape)}, expected {node.type}")
        env[node] = result
    return [env[o] for o in graph.outputs]
