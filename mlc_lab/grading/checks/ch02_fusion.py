"""Official checks for exercises/02_fusion.md (operator fusion)."""

from __future__ import annotations

import numpy as np

from mlc_lab.grading.checks.rewrite_cases import rewritten
from mlc_lab.grading.session import Grading, check


def _fanout_graph(rng: np.random.Generator):
    """Chains that must not match: a middle node read twice, and a middle node that is an output."""
    from mlc_lab.ir import GraphBuilder

    rows, width = int(rng.integers(1, 5)), int(rng.integers(2, 9))
    b = GraphBuilder("fanout")
    x = b.input("x", (rows, 8))
    w1 = b.constant(rng.standard_normal((width, 8)).astype(np.float32), "w1")
    b1 = b.constant(rng.standard_normal(width).astype(np.float32), "b1")
    shared = b.bias_add(b.dense(x, w1, name="d1"), b1, axis=-1, name="shared")  # read by relu and neg
    r1 = b.relu(shared, name="r1")
    other = b.neg(shared, name="other")
    w2 = b.constant(rng.standard_normal((width, width)).astype(np.float32), "w2")
    b2 = b.constant(rng.standard_normal(width).astype(np.float32), "b2")
    exposed = b.bias_add(b.dense(r1, w2, name="d2"), b2, axis=-1, name="exposed")  # a graph output
    return b.build([other, b.relu(exposed, name="r2"), exposed])


@check(points=3, forbids=("mlc_lab.passes.fusion.patterns.match_chain",))
def check_match_chain(g: Grading) -> None:
    """my_match_chain(pattern, start, users, outputs) agrees with the reference matcher everywhere."""
    from mlc_lab.grading.probes import zoo_graph
    from mlc_lab.passes.fusion import PATTERNS, chain, match_chain

    g.need("my_match_chain")
    patterns = list(PATTERNS.values()) + [chain("softmax_chain", "matmul", "div|mul?", "softmax")]
    cases = [(name, zoo_graph(name), {"zoo": name, "fused": False}) for name in ("small_cnn", "transformer_block")]
    fanout = _fanout_graph(g.rng)
    cases.append(("a graph with fan-out and outputs mid-chain", fanout, fanout))
    for name, graph, sent in cases:
        users, outputs = graph.users(), set(graph.outputs)
        with g.case(f"every pattern from every node of {name}") as case:
            table = g.probe("match_chain", "my_match_chain", sent, patterns)
            assert isinstance(table, list) and len(table) == len(patterns), "one row per pattern expected"
            for pattern, row in zip(patterns, table, strict=True):
                assert isinstance(row, list) and len(row) == len(graph.nodes), "one answer per node expected"
                for node, got in zip(graph.nodes, row, strict=True):
                    want = match_chain(pattern, node, users, outputs)
                    want = None if want is None else [n.name for n in want]
                    if got != want:
                        case.got, case.expected = repr(got), repr(want)
                        raise AssertionError(f"pattern {pattern} from %{node.name}: you matched {got}, expected {want}")


@check(points=2)
def check_attention_pattern(g: Grading) -> None:
    """attention_scores_pattern() fuses matmul -> div -> softmax of the transformer block into one group."""
    from mlc_lab import zoo
    from mlc_lab.ir import interpret
    from mlc_lab.passes.fusion import OperatorFusionPass, Pattern

    fn = g.need("attention_scores_pattern")
    with g.case("attention_scores_pattern() on the transformer block") as case:
        pattern = fn()
        case.got = str(pattern)
        assert isinstance(pattern, Pattern), (
            "attention_scores_pattern() must return a Pattern (build it with chain(...))"
        )
        model = zoo.load("transformer_block")
        graph = model.graph()
        fused = OperatorFusionPass([pattern]).apply(graph)
        groups = [n for n in fused.ops if n.op == "fused"]
        assert len(groups) == 1, f"expected exactly one fused group, found {len(groups)}"
        members = [n.op for n in groups[0].subgraph.ops]
        assert members == ["matmul", "div", "softmax"], f"the group holds {members}, expected matmul, div, softmax"
        inputs = model.numpy_inputs()
        err = np.abs(interpret(fused, *inputs)[0] - interpret(graph, *inputs)[0]).max()
        assert err < 1e-6, "results changed"


def _random_chain(rng: np.random.Generator):
    """A small graph with fan-out, so 'read once per user' matters; shapes drawn per run."""
    from mlc_lab.ir import GraphBuilder

    rows, cols = int(rng.integers(2, 9)), int(rng.integers(2, 17))
    b = GraphBuilder("traffic")
    x = b.input("x", (rows, cols))
    r = b.relu(x, name="r")
    e = b.exp(r, name="e")
    s = b.add(r, e, name="s")
    return b.build([b.mul(s, e, name="m")])


@check(points=2, forbids=("mlc_lab.metrics.graph_metrics", "mlc_lab.metrics.GraphMetrics"))
def check_intermediate_traffic(g: Grading) -> None:
    """intermediate_traffic(graph) = bytes of intermediates written once + read once per user."""
    from mlc_lab.grading.probes import zoo_graph
    from mlc_lab.metrics import graph_metrics
    from mlc_lab.passes.fusion import ElementwiseFusionPass

    fn = g.need("intermediate_traffic")
    for name in ("mlp", "small_cnn", "transformer_block"):
        for fused in (False, True):
            want = graph_metrics(zoo_graph(name, fused)).intermediate_traffic_bytes
            label = f"intermediate_traffic({'fused ' if fused else ''}{name})"
            g.compare(label, lambda name=name, fused=fused: fn({"zoo": name, "fused": fused}), want)
    drawn = _random_chain(g.rng)
    for graph in (drawn, ElementwiseFusionPass().apply(drawn)):
        want = graph_metrics(graph).intermediate_traffic_bytes
        g.compare(
            f"intermediate_traffic(<{len(graph.ops)}-kernel graph on {graph.inputs[0].type}>)",
            lambda gr=graph: fn(gr),
            want,
        )


#: the kinds of x * sigmoid(x) sites the fusion-rule check draws, and whether each one must fuse
SILU_SITES = {
    "x * sigmoid(x)": True,
    "sigmoid(x) * x": True,
    "x * sigmoid(y)": False,  # a different value under the sigmoid: not SiLU
    "sigmoid read twice": False,  # fusing would compute the sigmoid twice
    "sigmoid is an output": False,  # it must be written anyway
}


def _silu_sites(rng: np.random.Generator, kinds: list[str]):
    """A chain of sites of these kinds (and how many must become `silu`), on a drawn shape."""
    from mlc_lab.ir import GraphBuilder

    shape = (int(rng.integers(1, 5)), int(rng.integers(2, 17)))
    b = GraphBuilder("silu_sites")
    h = b.input("x", shape)
    outputs, fusable = [], 0
    for i, kind in enumerate(kinds):
        fusable += SILU_SITES[kind]
        if kind == "x * sigmoid(x)":
            h = b.mul(h, b.sigmoid(h, name=f"s{i}"), name=f"m{i}")
        elif kind == "sigmoid(x) * x":
            h = b.mul(b.sigmoid(h, name=f"s{i}"), h, name=f"m{i}")
        elif kind == "x * sigmoid(y)":
            h = b.mul(h, b.sigmoid(b.neg(h, name=f"y{i}"), name=f"s{i}"), name=f"m{i}")
        elif kind == "sigmoid read twice":
            s = b.sigmoid(h, name=f"s{i}")
            h = b.add(b.mul(h, s, name=f"m{i}"), s, name=f"a{i}")
        else:
            s = b.sigmoid(h, name=f"s{i}")
            outputs.append(s)
            h = b.mul(h, s, name=f"m{i}")
        if rng.random() < 0.5:  # sometimes the next site reads this one directly: nested matches
            h = b.tanh(h, name=f"t{i}")
    return b.build([h, *outputs]), fusable


@check(points=4, forbids=("mlc_lab.passes.fusion.ElementwiseFusionPass",))
def check_silu_rule(g: Grading) -> None:
    """FuseSiLU, a RewritePattern: mul(x, sigmoid(x)) in either order becomes silu(x), only where that saves work."""
    from mlc_lab.ir import interpret

    g.need("FuseSiLU")
    every_kind = [str(k) for k in g.rng.permutation(list(SILU_SITES))]
    drawn = [[str(k) for k in g.rng.choice(list(SILU_SITES), int(g.rng.integers(6, 12)))] for _ in range(2)]
    for kinds in (every_kind, *drawn):
        graph, fusable = _silu_sites(g.rng, kinds)
        count = len(kinds)
        sigmoids = graph.op_counts().get("sigmoid", 0)
        with g.case(f"apply_patterns(<{count} drawn sites, {fusable} of them SiLU>, [FuseSiLU()])") as case:
            out = rewritten(g, case, ["FuseSiLU"], graph)
            counts = out.op_counts()
            assert counts.get("silu", 0) == fusable, (
                f"{counts.get('silu', 0)} silu nodes, expected {fusable}: only x * sigmoid(x) with the same x, "
                "whose sigmoid is read once and is no graph output, fuses"
            )
            assert counts.get("sigmoid", 0) == sigmoids - fusable, (
                f"{counts.get('sigmoid', 0)} sigmoids remain, expected {sigmoids - fusable}"
            )
            x = g.rng.standard_normal(graph.inputs[0].type.shape).astype(np.float32) * 3
            for got, want in zip(interpret(out, x), interpret(graph, x), strict=True):
                err = float(np.abs(got - want).max())
                assert err < 1e-5, f"the rewritten graph differs from the original by up to {err:.3g}"
