"""The reference interpreter: runs any graph with NumPy, one op at a time.

It is the oracle: every pass, code generator and simulator is tested against its answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.memory import check_graph_fits
from mlc_lab.ir.ops import OPS
from mlc_lab.ir.types import SymDim

if TYPE_CHECKING:  # annotations only: graph.py calls this module, so a runtime import back would be a cycle
    from mlc_lab.ir.graph import Graph, Node


class InterpreterError(MlcLabError, RuntimeError):
    pass


def to_numpy(value: Any) -> np.ndarray:
    """Accept NumPy arrays, torch tensors and Python scalars/lists."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def check_inputs(graph: Graph, inputs: tuple[Any, ...]) -> list[np.ndarray]:
    """Match the caller's arrays against the graph's inputs, naming the first that does not fit."""
    arrays, _ = bind_inputs(graph, inputs)
    return arrays


def bind_inputs(graph: Graph, inputs: tuple[Any, ...]) -> tuple[list[np.ndarray], dict[str, int]]:
    """`check_inputs`, plus the size each symbolic dimension (`SymDim`) takes in these inputs.

    A symbolic dimension must have one size across all inputs, and at most its upper bound.
    """
    if len(inputs) != len(graph.inputs):
        names = ", ".join(f"%{x.name}: {x.type}" for x in graph.inputs)
        raise InterpreterError(f"graph {graph.name!r} takes {len(graph.inputs)} inputs ({names}), got {len(inputs)}")
    arrays = []
    sizes: dict[str, int] = {}
    for node, value in zip(graph.inputs, inputs):
        array = to_numpy(value)
        if not node.type.is_static and array.ndim == node.type.rank:
            _bind_symbols(node, array.shape, sizes)
        if tuple(array.shape) != node.type.bind(sizes).shape:
            raise InterpreterError(
                f"input %{node.name}: expected shape {list(node.type.shape)}, got {list(array.shape)}"
            )
        if array.dtype.name != node.type.dtype:
            raise InterpreterError(
                f"input %{node.name}: expected dtype {node.type.dtype}, got {array.dtype.name} (use .astype)"
            )
        arrays.append(array)
    return arrays, sizes


def _bind_symbols(node: Node, shape: tuple[int, ...], sizes: dict[str, int]) -> None:
    for axis, (dim, size) in enumerate(zip(node.type.shape, shape)):
        if not isinstance(dim, SymDim):
            continue
        if size > dim.upper:
            raise InterpreterError(
                f"input %{node.name}: axis {axis} has size {size}, above the bound of its symbolic dimension {dim}"
            )
        if sizes.setdefault(dim.name, size) != size:
            raise InterpreterError(
                f"input %{node.name}: axis {axis} has size {size}, but symbolic dimension {dim.name!r} "
                f"is {sizes[dim.name]} in an earlier input"
            )


def bind_attrs(attrs: Any, sizes: dict[str, int]) -> Any:
    """Attributes with every SymDim (inside tuples, e.g. a reshape's target) replaced by its size."""
    if isinstance(attrs, SymDim):
        return sizes[attrs.name]
    if isinstance(attrs, tuple):
        return tuple(bind_attrs(a, sizes) for a in attrs)
    if isinstance(attrs, dict) or hasattr(attrs, "items") and not isinstance(attrs, np.ndarray):
        return {k: bind_attrs(v, sizes) for k, v in attrs.items()}
    return attrs


def evaluate(graph: Graph, *inputs: Any) -> dict[Node, np.ndarray]:
    """Every node's value, for inspecting intermediate results."""
    arrays, sizes = bind_inputs(graph, inputs)
    env: dict[Node, np.ndarray] = dict(zip(graph.inputs, arrays))
    check_graph_fits(graph, f"interpreting graph {graph.name!r}", held=False)  # it keeps every value
    for node in graph.nodes:
        if node.op == "input":
            continue
        opdef = OPS[node.op]
        args = [env[x] for x in node.inputs]
        attrs = bind_attrs(node.attrs, sizes) if sizes else node.attrs
        ty = node.type.bind(sizes) if sizes else node.type
        try:
            result = np.asarray(opdef.compute(*args, **attrs))
        except Exception as e:
            raise InterpreterError(f"node %{node.name} ({node.op}) failed: {type(e).__name__}: {e}") from e
        if result.shape != ty.shape or result.dtype.name != ty.dtype:
            raise InterpreterError(
                f"node %{node.name} ({node.op}) produced {result.dtype.name}{list(result.shape)}, "
                f"its type says {ty}"
            )
        env[node] = result
    return env


def interpret(graph: Graph, *inputs: Any) -> list[np.ndarray]:
    """Run `graph` on `inputs` and return its outputs as fresh NumPy arrays (the caller's to keep or mutate)."""
    env = evaluate(graph, *inputs)
    held = [env[x] for x in graph.inputs] + [n.value for n in graph.constants]
    return fresh_outputs([env[o] for o in graph.outputs], held)


def fresh_outputs(outputs: Sequence[np.ndarray], held: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
    """`outputs`, each copied if it may share memory with `held` or with an earlier output, or is read-only.

    Ops return views where NumPy can (reshape, a full slice, an identity), so an output can be the
    caller's input, a graph constant, a buffer a runtime reuses on the next call (all in `held`), or
    another output. The caller owns what a call returns: mutating it must not change anything else.
    Only what may alias is copied (`np.may_share_memory` compares address bounds: cheap, conservative).
    """
    fresh: list[np.ndarray] = []
    for out in outputs:
        if not out.flags.writeable or _may_overlap(out, held) or _may_overlap(out, fresh):
            out = out.copy()
        fresh.append(out)
    return fresh


def _may_overlap(array: np.ndarray, others: Sequence[np.ndarray]) -> bool:
    for other in others:  # a plain loop: this runs on every call of every backend
        if np.may_share_memory(array, other):
            return True
    return False
