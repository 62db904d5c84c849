"""Nodes whose every input is empty: their result depends on no data, so it is a constant.

`sum` over an empty axis is 0, a matmul with an inner dimension of 0 is all zeros, the `mean` of
nothing is NaN: whatever the reference semantics (the op registry) say for zero-size inputs. Code
generators emit that constant instead of a loop nest whose reduction runs zero times (TVM then never
runs the reduction's init, leaving uninitialised memory; a mean divides by a count of 0).
"""

from __future__ import annotations

import warnings

import numpy as np

from mlc_lab.ir.graph import Node
from mlc_lab.ir.ops import OPS, OpError, is_source


def data_free_value(node: Node) -> np.ndarray | None:
    """The constant a node computes when all its inputs are empty and its output is not; else None.

    Raises OpError (naming the node) when that value is not one number repeated: code generators
    emit it as a fill.
    """
    # A fused node is left to its members (its sub-graph's constants make its value non-uniform).
    if is_source(node.op) or node.op == "fused" or not node.inputs or node.type.numel == 0:
        return None
    if any(x.type.numel for x in node.inputs):
        return None
    empties = [np.zeros(x.shape, x.dtype) for x in node.inputs]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on the mean of an empty slice
        value = np.asarray(OPS[node.op].compute(*empties, **node.attrs)).astype(node.dtype)
    first = value.reshape(-1)[:1]
    same = np.isnan(value).all() if value.dtype.kind == "f" and np.isnan(first).all() else (value == first).all()
    if not same:
        raise OpError(f"node %{node.name} ({node.op}): empty inputs give a non-uniform result {value.tolist()}")
    return value
