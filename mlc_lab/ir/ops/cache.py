"""`cache_write`: rows written into one layer of a K/V cache at a position held in a tensor.

    new = cache_write(cache [layers, ..., max_len, d], rows [..., t, d], position [1] int64, layer=l)
    # new == cache, except new[l, ..., position : position + t, :] = rows

In the IR it is a value like any other (the input cache is unchanged). A backend may do it in place
when nothing reads the old cache afterwards: TVM writes the rows into the cache's own buffer
(`mlc_lab.codegen.tvm.inplace`), which is what makes a decode step cost O(t) memory traffic for the
update rather than a copy of the whole cache. A position outside [0, max_len - t] is an error in the
interpreter; compiled kernels clamp it (they cannot raise).
"""

from __future__ import annotations

import numpy as np

from mlc_lab.ir.ops.index import INDEX_DTYPES
from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, register, same_dtype
from mlc_lab.ir.types import SymDim


def _cache_write_type(types, attrs):
    cache, rows, position = types
    same_dtype("cache_write", [cache, rows])
    layer = attrs["layer"]
    if cache.rank < 3:
        raise OpError(f"cache_write: the cache must be [layers, ..., max_len, d], got {list(cache.shape)}")
    if not 0 <= layer < cache.shape[0]:
        raise OpError(f"cache_write: layer {layer} is outside the cache's {cache.shape[0]} layers")
    if rows.rank != cache.rank - 1 or rows.shape[:-2] != cache.shape[1:-2] or rows.shape[-1] != cache.shape[-1]:
        raise OpError(
            f"cache_write: rows {list(rows.shape)} do not fit a layer of cache {list(cache.shape)} "
            f"(expected [{', '.join(map(str, cache.shape[1:-2]))}, t, {cache.shape[-1]}])"
        )
    t = rows.shape[-2]
    if not isinstance(t, SymDim) and t > cache.shape[-2]:
        raise OpError(f"cache_write: {t} rows do not fit in a cache of length {cache.shape[-2]}")
    if position.dtype not in INDEX_DTYPES or position.shape != (1,):
        raise OpError(f"cache_write: position must be int32/int64 of shape [1], got {position}")
    return cache


def _cache_write(cache: np.ndarray, rows: np.ndarray, position: np.ndarray, layer: int) -> np.ndarray:
    p, t, length = int(position[0]), rows.shape[-2], cache.shape[-2]
    if not 0 <= p <= length - t:
        raise OpError(f"cache_write: position {p} with {t} rows is outside a cache of length {length}")
    out = cache.copy()
    out[layer, ..., p : p + t, :] = rows
    return out


def _cache_write_parts(b, cache, rows, position, layer):
    """For backends without a kernel of their own: a select over the whole cache.

    Row s of layer `layer` takes rows[s - position] where 0 <= s - position < t (a `take` with the index
    clamped into range), every other element keeps the cache's value.
    """
    *_, length, _ = cache.shape
    t = rows.shape[-2]
    if isinstance(t, SymDim) or isinstance(length, SymDim):
        raise OpError(f"cache_write: the decomposition needs static lengths, got {rows.type} into {cache.type}")
    rank, idx = len(cache.shape), position.dtype
    rel = b.sub(b.constant(np.arange(length, dtype=idx), name="rows"), position)  # [length]: s - position
    zero, count = b.constant(np.zeros((), idx)), b.constant(np.array(t, idx))
    inside = b.logical_and(b.greater_equal(rel, zero), b.less(rel, count))
    source = b.minimum(b.maximum(rel, zero), b.constant(np.array(t - 1, idx)))
    gathered = b.reshape(b.take(rows, source, axis=rank - 3), shape=(1, *cache.shape[1:]))
    one_layer = np.zeros((cache.shape[0],) + (1,) * (rank - 1), bool)
    one_layer[layer] = True
    at = b.logical_and(b.constant(one_layer, name="layer"), b.reshape(inside, shape=(1,) * (rank - 2) + (length, 1)))
    return b.where(at, gathered, cache)


register(
    "cache_write",
    OpKind.OPAQUE,  # never fused: the TVM backend lowers it on its own, in place where it can
    _cache_write_type,
    _cache_write,
    decompose=_cache_write_parts,
    attrs={"layer": 0},
    arity=(3, 3),
    traits=[Trait.DATA_MOVEMENT],
    doc="the cache with `rows` written into layer `layer` at positions [position, position + t)",
)
