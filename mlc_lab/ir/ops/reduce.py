"""Reductions over axes."""

from __future__ import annotations

import warnings

import numpy as np

from mlc_lab.ir.ops.registry import OpError, OpKind, register
from mlc_lab.ir.types import TensorType


def _axes(op: str, axes, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    out = []
    for a in (axes,) if isinstance(axes, int) else axes:
        if not -rank <= a < rank:
            raise OpError(f"{op}: axis {a} out of range for rank {rank}")
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise OpError(f"{op}: repeated axis in {list(axes)}")
    return tuple(sorted(out))


def _reduce_type(op: str):
    def infer(types, attrs):
        (x,) = types
        axes = _axes(op, attrs["axes"], x.rank)
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        empty = [a for a in axes if x.shape[a] == 0]
        if op in ("max", "min") and empty:  # as PyTorch: no identity to return
            raise OpError(f"{op}: cannot reduce the empty axis {empty[0]} of {list(x.shape)} (it has no identity)")
        if op == "mean" and empty and not x.dtype.startswith("float"):
            raise OpError(
                f"mean: the mean of an empty axis of {x.dtype}{list(x.shape)} is NaN, which {x.dtype} cannot hold"
            )
        return TensorType(shape, x.dtype)

    return infer


def _canon(attrs):
    axes = attrs["axes"]
    return {**attrs, "axes": (axes,) if isinstance(axes, int) else axes, "keepdims": bool(attrs["keepdims"])}


def _mean(x, axis, keepdims):
    """np.mean, without its warning for an empty axis: NaN is the answer there (as in PyTorch)."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.mean(x, axis=axis, keepdims=keepdims)


for _name, _fn in {"sum": np.sum, "mean": _mean, "max": np.max, "min": np.min}.items():
    register(
        _name,
        OpKind.REDUCTION,
        _reduce_type(_name),
        lambda x, axes, keepdims, _fn=_fn: np.asarray(_fn(x, axis=_axes("", axes, x.ndim), keepdims=keepdims)).astype(
            x.dtype
        ),
        attrs={"axes": None, "keepdims": False},
        canonicalize=_canon,
        doc=f"{_name} over `axes` (None: all axes)",
    )
