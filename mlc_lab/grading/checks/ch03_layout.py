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


#: layouts the drawn transform graphs move between (channels are a multiple of 4)
LAYOUTS = ("NCHW", "NHWC", "NCHW4c")


def _drawn_transforms(rng: np.random.Generator):
    """Random chains of layout transforms, with branches and layout-agnostic ops between them."""
    from mlc_lab.ir import GraphBuilder

    channels, size = 4 * int(rng.integers(1, 4)), int(rng.integers(2, 5))
    b = GraphBuilder("drawn_transforms")
    values = [(b.input("x", (1, channels, size, size)), "NCHW")]
    for i in range(int(rng.integers(8, 15))):
        value, layout = values[int(rng.integers(len(values)))]  # an earlier value: branches
        if rng.random() < 0.25:
            values.append((b.relu(value, name=f"r{i}"), layout))
            continue
        dst = LAYOUTS[int(rng.integers(len(LAYOUTS)))]
        values.append((b.layout_transform(value, src_layout=layout, dst_layout=dst, name=f"t{i}"), dst))
    back = [v if layout == "NCHW" else b.layout_transform(v, src_layout=layout, dst_layout="NCHW", name=f"out{k}")
            for k, (v, layout) in enumerate(values[-3:])]  # every output in NCHW: more pairs to cancel
    return b.build(back)


def _reducible(node) -> bool:
    """A transform that reads a transform, or one from a layout to itself."""
    return node.inputs[0].op == "layout_transform" or node.attrs["src_layout"] == node.attrs["dst_layout"]


def _transforms(graph) -> list[tuple[str, str]]:
    return sorted((n.attrs["src_layout"], n.attrs["dst_layout"]) for n in graph.ops if n.op == "layout_transform")


@check(
    points=3,
    forbids=(
        "mlc_lab.passes.memory.cancel.CancelLayoutTransforms",
        "mlc_lab.passes.memory.cancel.cancel_pair",
        "mlc_lab.passes.memory.cancel.CANCEL_PATTERNS",
        "mlc_lab.passes.memory.cancel.CancelInversePair",
        "mlc_lab.passes.memory.cancel.MergeTransformChain",
        "mlc_lab.passes.memory.cancel.DropIdentityTransform",
    ),
)
def check_cancel_transforms(g: Grading) -> None:
    """SimplifyTransforms removes A->B->A pairs and identity transforms and merges A->B->C chains,
    on a fixed graph and on graphs drawn at grading time (compared with the package's own pass)."""
    from mlc_lab.ir import Graph, interpret
    from mlc_lab.passes.memory.cancel import CancelLayoutTransforms

    g.need("SimplifyTransforms")
    fixed = [_transform_case(8, 4), _transform_case(4 * int(g.rng.integers(1, 5)), int(g.rng.integers(2, 7)))]
    for graph in [*fixed, _drawn_transforms(g.rng), _drawn_transforms(g.rng)]:
        want = _transforms(CancelLayoutTransforms().apply(graph))
        shape = graph.inputs[0].type.shape
        label = f"{len(_transforms(graph))} transforms on {'x'.join(map(str, shape))}"
        with g.case(f"SimplifyTransforms().apply(<{graph.name}: {label}>)") as case:
            answer = g.probe("apply_pass", "SimplifyTransforms", graph)
            out = answer["out"]
            assert isinstance(out, Graph), f"apply returned a {type(out).__name__}, not a Graph"
            out.verify()
            case.got = str(out)
            assert answer["input_unchanged"], "your pass edited its input graph"
            got = _transforms(out)
            left = [n.name for n in out.ops if n.op == "layout_transform" and _reducible(n)]
            assert not left, f"remaining transforms {got}: %{left[0]} can still be cancelled, merged or dropped"
            assert len(got) <= len(want), f"remaining transforms {got}, expected at most {len(want)}: {want}"
            x = g.rng.standard_normal(shape).astype(np.float32)
            for got_v, want_v in zip(interpret(out, x), interpret(graph, x), strict=True):
                assert np.array_equal(got_v, want_v), "the simplified graph computes something different"


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
