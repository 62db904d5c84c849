"""Official checks for exercises/03_layout.md (memory layout and buffer planning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.checks.common import need


def _transform_case():
    from mlc_lab.ir import GraphBuilder

    b = GraphBuilder("transforms")
    x = b.input("x", (1, 8, 4, 4))
    there = b.layout_transform(x, src_layout="NCHW", dst_layout="NHWC", name="to_nhwc")
    back = b.layout_transform(there, src_layout="NHWC", dst_layout="NCHW", name="back")  # cancels
    a = b.relu(back, name="a")
    chained = b.layout_transform(  # NCHW -> NHWC -> NCHW4c collapses into NCHW -> NCHW4c
        b.layout_transform(a, dst_layout="NHWC", name="step1"), src_layout="NHWC", dst_layout="NCHW4c", name="step2"
    )
    same = b.layout_transform(x, src_layout="NCHW", dst_layout="NCHW", name="noop")  # identity
    return b.build([a, chained, b.neg(same, name="n")])


def check_cancel_transforms(ns: dict[str, Any]) -> None:
    """SimplifyTransforms removes A->B->A pairs and identity transforms and merges A->B->C chains."""
    from mlc_lab.ir import interpret
    from mlc_lab.passes import Pass

    cls = need(ns, "SimplifyTransforms")
    assert isinstance(cls, type) and issubclass(cls, Pass), "SimplifyTransforms must subclass Pass"
    graph = _transform_case()
    text = str(graph)
    out = cls().apply(graph)
    assert str(graph) == text, "your pass edited its input graph"
    out.verify()
    transforms = [(n.attrs["src_layout"], n.attrs["dst_layout"]) for n in out.ops if n.op == "layout_transform"]
    assert transforms == [("NCHW", "NCHW4c")], f"remaining transforms {transforms}, expected only NCHW -> NCHW4c"
    x = np.random.default_rng(0).standard_normal((1, 8, 4, 4)).astype(np.float32)
    for got, want in zip(interpret(out, x), interpret(graph, x)):
        assert np.array_equal(got, want), "the simplified graph computes something different"


def check_offsets(ns: dict[str, Any]) -> None:
    """offset(layout, shape, n, c, h, w) for NCHW, NHWC and NCHW<x>c matches how the data is stored."""
    from mlc_lab.ir import layout as L

    fn = need(ns, "offset")
    shape = (2, 16, 3, 5)
    data = np.arange(np.prod(shape)).reshape(shape)
    for layout in ("NCHW", "NHWC", "NCHW8c", "NCHW4c"):
        stored = L.to_layout(data, "NCHW", layout).ravel()
        for n, c, h, w in [(0, 0, 0, 0), (1, 9, 2, 4), (0, 15, 1, 3), (1, 4, 0, 1), (0, 7, 2, 0)]:
            got = int(fn(layout, shape, n, c, h, w))
            want = int(np.flatnonzero(stored == data[n, c, h, w])[0])
            assert got == want, f"offset({layout!r}, {shape}, n={n}, c={c}, h={h}, w={w}) = {got}, expected {want}"


def check_peak_live(ns: dict[str, Any]) -> None:
    """peak_live_bytes(graph): the most bytes alive at once while running graph.ops in order."""
    from mlc_lab import zoo
    from mlc_lab.passes.fusion import ElementwiseFusionPass
    from mlc_lab.passes.memory import plan_memory

    fn = need(ns, "peak_live_bytes")
    for name in ("mlp", "small_cnn", "resnet18"):
        for graph in (zoo.load(name).graph(), ElementwiseFusionPass().apply(zoo.load(name).graph())):
            want = plan_memory(graph).peak_live_bytes
            got = fn(graph)
            assert got == want, f"{name} ({len(graph.ops)} ops): you computed {got:,} bytes, expected {want:,}"
