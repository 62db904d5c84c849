"""The `cache_write` op: its meaning (interpreter), its decomposition (what MLIR compiles), its errors."""

import numpy as np
import pytest

from mlc_lab.ir import GraphBuilder, InterpreterError, OpError, interpret
from mlc_lab.passes.decompose import Decompose


def graph(t: int = 2, layer: int = 1):
    b = GraphBuilder("write")
    cache = b.input("cache", (3, 1, 2, 8, 4))
    rows = b.input("rows", (1, 2, t, 4))
    return b.build(b.cache_write(cache, rows, b.input("position", (1,), "int64"), layer=layer))


def arrays(t: int, position: int):
    rng = np.random.default_rng(t)
    return rng.standard_normal((3, 1, 2, 8, 4)).astype(np.float32), rng.standard_normal((1, 2, t, 4)).astype(
        np.float32
    ), np.array([position])


@pytest.mark.parametrize("t, position", [(1, 0), (2, 3), (2, 6), (8, 0)])
def test_meaning_and_decomposition(t, position):
    cache, rows, pos = arrays(t, position)
    want = cache.copy()
    want[1, :, :, position : position + t] = rows
    g = graph(t)
    (got,) = interpret(g, cache, rows, pos)
    np.testing.assert_array_equal(got, want)
    decomposed = Decompose().apply(g)
    assert "cache_write" not in decomposed.op_counts()
    np.testing.assert_array_equal(interpret(decomposed, cache, rows, pos)[0], want)
    np.testing.assert_array_equal(cache, arrays(t, position)[0])  # the input is a value: unchanged


def test_errors_name_the_problem():
    with pytest.raises(InterpreterError, match=r"position 7 with 2 rows is outside a cache of length 8"):
        interpret(graph(2), *arrays(2, 7))
    b = GraphBuilder()
    cache = b.input("cache", (2, 1, 2, 8, 4))
    pos = b.input("p", (1,), "int64")
    with pytest.raises(OpError, match=r"layer 2 is outside the cache's 2 layers"):
        b.cache_write(cache, b.input("r", (1, 2, 1, 4)), pos, layer=2)
    with pytest.raises(OpError, match=r"rows \[1, 3, 1, 4\] do not fit a layer"):
        b.cache_write(cache, b.input("r2", (1, 3, 1, 4)), pos, layer=0)
    with pytest.raises(OpError, match=r"9 rows do not fit in a cache of length 8"):
        b.cache_write(cache, b.input("r3", (1, 2, 9, 4)), pos, layer=0)
