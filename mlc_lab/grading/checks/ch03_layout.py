"""Official checks for exercises/03_layout.md (memory layout and buffer planning)."""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.session import Grading, check


def _transform_case(channels: int, size: int):
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("transforms")
    x = b.input("x", (1, channels, size, size))
    there = b.layout_transform(x, src_layout="NCHW", dst_layout="NHWC", name="to_nhwc")
    back = b.layout_transform(there, src_layout="NHWC", dst_layout="NCHW", name="back")  # cancels
    a = b.relu(back, name="a")
    chained = b.layout_transform(  # NCHW -> NHWC -> NCHW4c collapses into NCHW -> NCHW4c
        b.layout_transform(a, dst_layout="NHWC", name="step1"), src_layout="NHWC", dst_layout="NCHW4c", name="step2"
    )
    same = b.layout_transform(x, src_layout="NCHW", dst_layout="NCHW", name="noop")  # identity
    return b.build([a, chained, b.neg(same, name="n")])


@check(
    points=3,
    forbids=("mlc_lab.passes.memory.cancel.CancelLayoutTransforms", "mlc_lab.passes.memory.cancel.cancel_pair"),
)
def check_cancel_transforms(g: Grading) -> None:
    """SimplifyTransforms removes A->B->A pairs and identity transforms and merges A->B->C chains."""
    from mlc_lab.ir import Graph, interpret

    g.need("SimplifyTransforms")
    for channels, size in [(8, 4), (4 * int(g.rng.integers(1, 5)), int(g.rng.integers(2, 7)))]:
        graph = _transform_case(channels, size)
        with g.case(f"SimplifyTransforms().apply(<transforms on 1x{channels}x{size}x{size}>)") as case:
            answer = g.probe("apply_pass", "SimplifyTransforms", graph)
            out = answer["out"]
            assert isinstance(out, Graph), f"apply returned a {type(out).__name__}, not a Graph"
            out.verify()
            case.got = str(out)
            assert answer["input_unchanged"], "your pass edited its input graph"
            transforms = [(n.attrs["src_layout"], n.attrs["dst_layout"]) for n in out.ops if n.op == "layout_transform"]
            assert transforms == [("NCHW", "NCHW4c")], (
                f"remaining transforms {transforms}, expected only NCHW -> NCHW4c"
            )
            x = g.rng.standard_normal((1, channels, size, size)).astype(np.float32)
            for got, want in zip(interpret(out, x), interpret(graph, x), strict=True):
                assert np.array_equal(got, want), "the simplified graph computes something different"


@check(points=2, forbids=("mlc_lab.ir.layout.to_layout",))
def check_offsets(g: Grading) -> None:
    """offset(layout, shape, n, c, h, w) for NCHW, NHWC and NCHW<x>c matches how the data is stored."""
    from mlc_lab.ir import layout as L

    fn = g.need("offset")
    shape = (int(g.rng.integers(1, 3)), 16, int(g.rng.integers(2, 5)), int(g.rng.integers(2, 7)))
    data = np.arange(np.prod(shape)).reshape(shape)
    for layout in ("NCHW", "NHWC", "NCHW8c", "NCHW4c"):
        stored = L.to_layout(data, "NCHW", layout).ravel()
        for _ in range(5):
            n, c, h, w = (int(g.rng.integers(0, d)) for d in shape)
            want = int(np.flatnonzero(stored == data[n, c, h, w])[0])
            g.compare(
                f"offset({layout!r}, {shape}, n={n}, c={c}, h={h}, w={w})",
                lambda layout=layout, n=n, c=c, h=h, w=w: int(fn(layout, shape, n, c, h, w)),
                want,
            )


@check(
    points=2,
    forbids=("mlc_lab.passes.memory.buffer_planner.plan_memory", "mlc_lab.passes.memory.buffer_planner.lifetimes"),
)
def check_peak_live(g: Grading) -> None:
    """peak_live_bytes(graph): the most bytes alive at once while running graph.ops in order."""
    from mlc_lab.grading.probes import zoo_graph
    from mlc_lab.passes.memory import plan_memory

    fn = g.need("peak_live_bytes")
    for name in ("mlp", "small_cnn", "resnet18"):
        for fused in (False, True):
            want = plan_memory(zoo_graph(name, fused)).peak_live_bytes
            label = f"peak_live_bytes({'fused ' if fused else ''}{name})"
            g.compare(label, lambda name=name, fused=fused: fn({"zoo": name, "fused": fused}), want)
    drawn = _random_graph(g.rng)
    want = plan_memory(drawn).peak_live_bytes
    g.compare(f"peak_live_bytes(<{len(drawn.ops)}-op graph on {drawn.inputs[0].type}>)", lambda: fn(drawn), want)


def _random_graph(rng: np.random.Generator):
    """A small graph drawn per run, with values that die at different times."""
    from mlc_lab.ir import GraphBuilder

    rows, cols = int(rng.integers(2, 9)), int(rng.integers(2, 33))
    b = GraphBuilder("drawn")
    x = b.input("x", (rows, cols))
    r = b.relu(x, name="r")
    e = b.exp(r, name="e")
    n = b.neg(e, name="n")
    s = b.add(r, n, name="s")  # keeps r alive across e and n
    return b.build(b.mul(s, s, name="m"))
