"""Official checks for exercises/01_ir.md (the IR chapter)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def check_build_mlp(ns: dict[str, Any]) -> None:
    """build_mlp(w1, b1, w2, b2) -> Graph computing relu(x @ w1.T + b1) @ w2.T + b2 for x of shape (batch, 8)."""
    from mlc_lab.ir import Graph, interpret

    build_mlp = need(ns, "build_mlp")
    rng = np.random.default_rng(1)
    w1, b1 = rng.standard_normal((16, 8), dtype=np.float32), rng.standard_normal(16, dtype=np.float32)
    w2, b2 = rng.standard_normal((4, 16), dtype=np.float32), rng.standard_normal(4, dtype=np.float32)
    graph = build_mlp(w1, b1, w2, b2)
    assert isinstance(graph, Graph), f"build_mlp returned a {type(graph).__name__}, not a Graph"
    graph.verify()
    assert len(graph.inputs) == 1, f"the graph should take one input x, it takes {len(graph.inputs)}"
    assert graph.inputs[0].type.shape[-1] == 8, f"x should have 8 features, got {graph.inputs[0].type}"
    x = rng.standard_normal(graph.inputs[0].type.shape, dtype=np.float32)
    expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
    got = interpret(graph, x)[0]
    assert got.shape == expected.shape, f"output shape {got.shape}, expected {expected.shape}"
    err = float(np.abs(got - expected).max())
    assert err < 1e-4, f"outputs differ from relu(x @ w1.T + b1) @ w2.T + b2 by up to {err:.3g}"


def check_conv_output_shape(ns: dict[str, Any]) -> None:
    """conv2d_output_shape(input_nchw, out_channels, kernel, stride, padding, dilation) -> (N, O, OH, OW)."""
    from mlc_lab.ir import TensorType, get_op

    fn = need(ns, "conv2d_output_shape")
    rng = np.random.default_rng(2)
    conv = get_op("conv2d")
    for _ in range(200):
        n, c, o = (int(v) for v in rng.integers(1, 5, 3))
        h, w = (int(v) for v in rng.integers(5, 30, 2))
        k, s, p, d = int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
        if h + 2 * p < d * (k - 1) + 1 or w + 2 * p < d * (k - 1) + 1:
            continue
        attrs = conv.normalize_attrs({"strides": s, "padding": p, "dilation": d})
        expected = conv.infer([TensorType((n, c, h, w)), TensorType((o, c, k, k))], attrs).shape
        got = tuple(int(v) for v in fn((n, c, h, w), o, k, s, p, d))
        assert got == expected, (
            f"conv2d_output_shape({(n, c, h, w)}, out_channels={o}, kernel={k}, stride={s}, padding={p}, "
            f"dilation={d}) = {got}, expected {expected}"
        )


def _simplifier_case():
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("simplify_me")
    x = b.input("x", (3, 5))
    one = b.constant(np.ones((1, 5), np.float32), "one")
    zero = b.constant(0.0, "zero")
    a = b.mul(x, one, name="times_one")  # -> x
    c = b.add(b.relu(a, name="r"), zero, name="plus_zero")  # -> relu(x)
    d = b.mul(b.constant(1.0, "scalar_one"), c, name="one_times")  # -> relu(x)
    kept = b.mul(d, b.constant(np.full((3, 5), 2.0, np.float32), "two"), name="times_two")  # stays
    broadcasting = b.add(b.constant(np.zeros((2, 3, 5), np.float32), "zeros3d"), kept, name="widening_add")
    return b.build([kept, broadcasting])  # adding zeros of a bigger shape changes the shape: must stay


def check_simplify_pass(ns: dict[str, Any]) -> None:
    """SimplifyAlgebra: a Pass removing x*1, 1*x and x+0 (only when the result keeps x's type)."""
    from mlc_lab.ir import interpret
    from mlc_lab.passes import Pass

    cls = need(ns, "SimplifyAlgebra")
    assert isinstance(cls, type) and issubclass(cls, Pass), "SimplifyAlgebra must be a subclass of mlc_lab.passes.Pass"
    graph = _simplifier_case()
    before_text = str(graph)
    out = cls().apply(graph)
    assert str(graph) == before_text, "your pass edited its input graph: build a new one (GraphRewriter does)"
    out.verify()
    counts = out.op_counts()
    assert counts.get("add", 0) == 1, f"expected only the widening add to remain, op counts are {counts}"
    assert counts.get("mul", 0) == 1, f"expected only the multiplication by two to remain, op counts are {counts}"
    assert counts.get("relu", 0) == 1, f"the relu must stay, op counts are {counts}"
    assert [o.type for o in out.outputs] == [o.type for o in graph.outputs], "output types changed"
    x = np.random.default_rng(3).standard_normal((3, 5)).astype(np.float32)
    for got, want in zip(interpret(out, x), interpret(graph, x)):
        assert np.array_equal(got, want), "the simplified graph computes something different"
