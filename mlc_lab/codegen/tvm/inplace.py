"""In-place kernels: `cache_write` writing its rows into the cache argument's own buffer.

Relax's `call_tir_inplace` makes the call's result alias an argument, so a decode step that appends
one token's K/V to a cache of max_len rows moves t * d elements per layer instead of copying the
cache. It is only safe when nothing reads the old cache after the write: `writes_in_place` checks that
every other reader of the cache value is an ancestor of the write (so it has run before, in any
order the dataflow allows) and that the cache is not a constant (shared by every call) or a graph
output in its own right.
"""

from __future__ import annotations

import math

import tvm
from tvm.script import tirx as T

from mlc_lab.ir.graph import Graph, Node, reachable


def writes_in_place(node: Node, graph: Graph, users: dict[Node, list[Node]]) -> bool:
    """Whether `node` (a cache_write) may overwrite its cache input's buffer."""
    if node.op != "cache_write" or not node.type.is_static or not node.inputs[1].type.is_static:
        return False
    cache = node.inputs[0]
    if cache.op == "constant" or any(o is cache for o in graph.outputs):
        return False
    others = [u for u in users.get(cache, []) if u is not node]
    # the cache input itself is not a path: a reader must feed this write's rows or position
    ancestors = reachable(node.inputs[1:])
    return all(u in ancestors for u in others)


def cache_write_inplace(node: Node, name: str) -> tvm.tirx.PrimFunc:
    """A PrimFunc (cache, rows, position) that stores `rows` into `cache`; it has no output parameter."""
    cache_t, rows_t, pos_t = (x.type for x in node.inputs)
    layer, dtype = node.attrs["layer"], cache_t.dtype
    length, depth, t_len = cache_t.shape[-2], cache_t.shape[-1], rows_t.shape[-2]
    mid = math.prod(cache_t.shape[1:-2])
    nc, nr = cache_t.numel, rows_t.numel

    @T.prim_func(check_well_formed=False)  # a root sblock (which Relax expects) fails the TIRx-only check
    def kernel(c: T.handle, r: T.handle, p: T.handle):
        T.func_attr({"tir.noalias": True})
        C = T.match_buffer(c, cache_t.shape, dtype)
        R = T.match_buffer(r, rows_t.shape, dtype)
        P = T.match_buffer(p, (1,), pos_t.dtype)
        with T.sblock("root"):
            with T.sblock("cache_write"):
                Cf = T.decl_buffer((nc,), dtype, data=C.data)
                Rf = T.decl_buffer((nr,), dtype, data=R.data)
                for m, i, d in T.grid(mid, t_len, depth):
                    Cf[
                        ((layer * mid + m) * length + T.max(T.min(T.Cast("int64", P[0]), length - t_len), 0) + i)
                        * depth + d
                    ] = Rf[(m * t_len + i) * depth + d]

    return kernel.with_attr("global_symbol", name)
