"""The layout pass keeps a graph's dtype: in a blocked layout, bias_add and batch_norm become a broadcasting
add/mul with re-stored per-channel constants, and those constants must have the graph's dtype. (They were
forced to float32, so on a float64 graph every blocked bias_add failed its type check and fell back to
NCHW: four layout transforms for two conv blocks instead of two.)"""

import numpy as np
import pytest

from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.passes.memory import MemoryLayoutOptimizer


def two_conv_blocks(dtype: str):
    rng = np.random.default_rng(0)
    b = GraphBuilder(f"blocks_{dtype}")
    x = b.input("x", (1, 8, 6, 6), dtype)

    def const(*shape):
        return b.constant(rng.standard_normal(shape).astype(dtype))

    y = b.conv2d(x, const(8, 8, 3, 3), padding=1)
    y = b.relu(b.bias_add(y, const(8), axis=1))
    y = b.conv2d(y, const(8, 8, 3, 3), padding=1)
    var = b.constant((np.abs(rng.standard_normal(8)) + 0.5).astype(dtype))
    y = b.relu(b.batch_norm(y, const(8), const(8), const(8), var))
    return b.build(y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["NCHW8c", "NCHW4c"])
def test_blocked_layout_keeps_the_graph_dtype(dtype, layout):
    graph = two_conv_blocks(dtype)
    moved = MemoryLayoutOptimizer(target_layout=layout).apply(graph)
    transforms = [n for n in moved.ops if n.op == "layout_transform"]
    assert len(transforms) == 2, f"{len(transforms)} layout transforms: {[t.name for t in transforms]}"
    assert {n.attrs["data_layout"] for n in moved.ops if n.op == "conv2d"} == {layout}
    assert {n.dtype for n in moved.nodes} == {dtype}, "a constant or an op changed dtype"
    x = np.random.default_rng(1).standard_normal((1, 8, 6, 6)).astype(dtype)
    got, want = interpret(moved, x)[0], interpret(graph, x)[0]
    assert got.dtype == want.dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
