"""Composite ops in simpler registered ops: a decomposition is written once, against a builder.

    def _softmax_parts(b, x, axis):
        e = b.exp(b.sub(x, b.max(x, axes=axis, keepdims=True)))
        return b.div(e, b.sum(e, axes=axis, keepdims=True))

`b` is either a GraphBuilder (the `Decompose` pass, `mlc_lab.passes.decompose`, builds the sub-graph
and inlines it for a backend with no native kernel) or an `EagerBuilder` here, which runs each op's
reference compute at once: that is the interpreter's meaning of an op registered with only a
decomposition. So a decomposition may only use `b.<op>(...)`, `b.constant(...)` and the values'
`.shape` and `.dtype`. This module imports nothing of the IR: the registry hands it the op table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: `decompose(builder, *inputs, **attrs) -> output`, in registered ops only.
Decomposition = Callable[..., Any]


class EagerBuilder:
    """A builder that computes instead of recording: `b.exp(x)` is the exp op's reference compute of x."""

    def __init__(self, ops: Mapping[str, Any]) -> None:
        self._ops = ops

    def constant(self, value: Any, name: str = "const", dtype: Any = None) -> np.ndarray:
        array = np.asarray(value, dtype=dtype)
        if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
            array = array.astype(np.float32)  # as GraphBuilder.constant: Python floats are f32
        return array

    def op(self, op: str, *inputs: np.ndarray, name: str | None = None, **attrs: Any) -> np.ndarray:
        opdef = self._ops[op]
        return np.asarray(opdef.compute(*inputs, **opdef.normalize_attrs(attrs)))

    def __getattr__(self, op: str) -> Callable[..., np.ndarray]:
        if op.startswith("_") or op not in self._ops:
            raise AttributeError(f"a decomposition used {op!r}, which is not a registered op")
        return lambda *inputs, **attrs: self.op(op, *inputs, **attrs)


def decomposed_compute(op: str, decompose: Decomposition, ops: Mapping[str, Any]) -> Callable[..., np.ndarray]:
    """The reference compute of an op known only by its decomposition: run it on an EagerBuilder."""

    def compute(*inputs: np.ndarray, **attrs: Any) -> np.ndarray:
        return decompose(EagerBuilder(ops), *(np.asarray(x) for x in inputs), **attrs)

    compute.__name__ = f"{op}_decomposed"
    compute.from_decomposition = True  # type: ignore[attr-defined]  (what `passes.decompose.has_own_compute` asks)
    return compute
