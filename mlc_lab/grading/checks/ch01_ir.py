"""Official checks for exercises/01_ir.md (the IR chapter)."""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check, show


def _graph(value, what: str):
    from mlc_lab.ir import Graph

    assert isinstance(value, Graph), f"{what} returned a {type(value).__name__}, not a Graph"
    value.verify()
    return value


@check(points=3)
def check_build_mlp(g: Grading) -> None:
    """build_mlp(w1, b1, w2, b2) -> Graph computing relu(x @ w1.T + b1) @ w2.T + b2 for x of shape (batch, 8)."""
    from mlc_lab.ir import interpret

    build_mlp = g.need("build_mlp")
    for hidden, out in [(16, 4), (int(g.rng.integers(3, 12)), int(g.rng.integers(2, 6)))]:
        w1, b1 = g.rng.standard_normal((hidden, 8), dtype=np.float32), g.rng.standard_normal(hidden, dtype=np.float32)
        w2, b2 = g.rng.standard_normal((out, hidden), dtype=np.float32), g.rng.standard_normal(out, dtype=np.float32)
        with g.case(f"build_mlp(w1: {hidden}x8, b1, w2: {out}x{hidden}, b2)") as case:
            graph = _graph(build_mlp(w1, b1, w2, b2), "build_mlp")
            case.got = str(graph)
            assert len(graph.inputs) == 1, f"the graph should take one input x, it takes {len(graph.inputs)}"
            assert graph.inputs[0].type.shape[-1] == 8, f"x should have 8 features, got {graph.inputs[0].type}"
            x = g.rng.standard_normal(graph.inputs[0].type.shape, dtype=np.float32)
            expected = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
            got = interpret(graph, x)[0]
            assert got.shape == expected.shape, f"output shape {got.shape}, expected {expected.shape}"
            err = float(np.abs(got - expected).max())
            assert err < 1e-4, f"outputs differ from relu(x @ w1.T + b1) @ w2.T + b2 by up to {err:.3g}"


@check(points=2)
def check_conv_output_shape(g: Grading) -> None:
    """conv2d_output_shape(input_nchw, out_channels, kernel, stride, padding, dilation) -> (N, O, OH, OW)."""
    from mlc_lab.ir import TensorType, get_op

    fn = g.need("conv2d_output_shape")
    conv = get_op("conv2d")
    cases = 0
    while cases < 40:
        n, c, o = (int(v) for v in g.rng.integers(1, 5, 3))
        h, w = (int(v) for v in g.rng.integers(5, 30, 2))
        k, s = int(g.rng.integers(1, 4)), int(g.rng.integers(1, 4))
        p, d = int(g.rng.integers(0, 3)), int(g.rng.integers(1, 3))
        if h + 2 * p < d * (k - 1) + 1 or w + 2 * p < d * (k - 1) + 1:
            continue
        cases += 1
        attrs = conv.normalize_attrs({"strides": s, "padding": p, "dilation": d})
        want = tuple(conv.infer([TensorType((n, c, h, w)), TensorType((o, c, k, k))], attrs).shape)
        g.compare(
            f"conv2d_output_shape({(n, c, h, w)}, out_channels={o}, kernel={k}, stride={s}, padding={p}, dilation={d})",
            lambda n=n, c=c, h=h, w=w, o=o, k=k, s=s, p=p, d=d: tuple(int(v) for v in fn((n, c, h, w), o, k, s, p, d)),
            want,
        )


def _simplifier_case(rows: int = 3, cols: int = 5):
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("simplify_me")
    x = b.input("x", (rows, cols))
    one = b.constant(np.ones((1, cols), np.float32), "one")
    zero = b.constant(0.0, "zero")
    a = b.mul(x, one, name="times_one")  # -> x
    c = b.add(b.relu(a, name="r"), zero, name="plus_zero")  # -> relu(x)
    d = b.mul(b.constant(1.0, "scalar_one"), c, name="one_times")  # -> relu(x)
    kept = b.mul(d, b.constant(np.full((rows, cols), 2.0, np.float32), "two"), name="times_two")  # stays
    broadcasting = b.add(b.constant(np.zeros((2, rows, cols), np.float32), "zeros3d"), kept, name="widening_add")
    return b.build([kept, broadcasting])  # adding zeros of a bigger shape changes the shape: must stay


@check(points=3)
def check_simplify_pass(g: Grading) -> None:
    """SimplifyAlgebra: a Pass removing x*1, 1*x and x+0 (only when the result keeps x's type)."""
    from mlc_lab.ir import interpret

    g.need("SimplifyAlgebra")
    for rows, cols in [(3, 5), (int(g.rng.integers(2, 7)), int(g.rng.integers(2, 9)))]:
        graph = _simplifier_case(rows, cols)
        with g.case(f"SimplifyAlgebra().apply(<x*1, 1*x, x+0 graph on {rows}x{cols}>)") as case:
            answer = g.probe("apply_pass", "SimplifyAlgebra", graph)
            out = _graph(answer["out"], "SimplifyAlgebra().apply")
            case.got = str(out)
            assert answer["input_unchanged"], "your pass edited its input graph: build a new one (GraphRewriter does)"
            counts = out.op_counts()
            assert counts.get("add", 0) == 1, f"expected only the widening add to remain, op counts are {counts}"
            assert counts.get("mul", 0) == 1, (
                f"expected only the multiplication by two to remain, op counts are {counts}"
            )
            assert counts.get("relu", 0) == 1, f"the relu must stay, op counts are {counts}"
            assert [o.type for o in out.outputs] == [o.type for o in graph.outputs], "output types changed"
            x = g.rng.standard_normal((rows, cols)).astype(np.float32)
            for got, want in zip(interpret(out, x), interpret(graph, x), strict=True):
                assert np.array_equal(got, want), "the simplified graph computes something different"


def _hard_swish(x: np.ndarray) -> np.ndarray:
    """The reference, in float64: x * relu6(x + 3) / 6 (PyTorch's Hardswish)."""
    x64 = x.astype(np.float64)
    return x64 * np.clip(x64 + 3.0, 0.0, 6.0) / 6.0


@check(points=4)
def check_new_op(g: Grading) -> None:
    """register_hard_swish() adds `hard_swish` to the registry; it then runs on the interpreter and TVM."""
    g.need("register_hard_swish")
    rows, cols = int(g.rng.integers(2, 6)), int(g.rng.integers(3, 17))
    for dtype in ("float32", "float64"):
        x = (g.rng.standard_normal((rows, cols)) * 4).astype(dtype)
        x.flat[:5] = [-3.0, 3.0, -4.5, 4.5, 0.0][: x.size]  # the corners of relu6 and both flat sides
        with g.case(f"hard_swish(x) + x on {dtype}[{rows}, {cols}]") as case:
            answer = g.probe("new_op", "register_hard_swish", "hard_swish", x)
            assert answer["registered"], "after register_hard_swish() the registry has no op 'hard_swish'"
            assert answer["kind"] == "OpKind.ELEMWISE", (
                f"hard_swish is elementwise (it fuses like relu); you registered it as {answer['kind']}"
            )
            assert answer["has_formula"], "give the op a scalar definition (scalar=) or a decomposition (decompose=)"
            assert answer["type"].shape == x.shape and answer["type"].dtype == dtype, (
                f"the type rule gives {answer['type']} for an input of {dtype}{list(x.shape)}"
            )
            want = _hard_swish(x) + x
            tol = 1e-5 if dtype == "float32" else 1e-12
            for backend in ("interpreter", "tvm"):
                got = np.asarray(answer[backend])
                case.got = show(got)
                assert got.dtype == np.dtype(dtype), f"{backend}: the result is {got.dtype}, the input {dtype}"
                err = float(np.abs(got - want).max())
                assert err <= tol * (1 + float(np.abs(want).max())), (
                    f"{backend}: hard_swish(x) + x differs from x * relu6(x + 3) / 6 + x by up to {err:.3g}"
                )
