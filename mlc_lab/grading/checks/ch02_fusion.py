"""Official checks for exercises/02_fusion.md (operator fusion)."""

from __future__ import annotations

from typing import Any

from mlc_lab.grading.checks.common import need


def check_match_chain(ns: dict[str, Any]) -> None:
    """my_match_chain(pattern, start, users, outputs) agrees with the reference matcher everywhere."""
    from mlc_lab import zoo
    from mlc_lab.passes.fusion import PATTERNS, chain, match_chain

    student = need(ns, "my_match_chain")
    patterns = list(PATTERNS.values()) + [chain("softmax_chain", "matmul", "div|mul?", "softmax")]
    for name in ("small_cnn", "transformer_block"):
        graph = zoo.load(name).graph()
        users, outputs = graph.users(), set(graph.outputs)
        for pattern in patterns:
            for node in graph.nodes:
                want = match_chain(pattern, node, users, outputs)
                got = student(pattern, node, users, outputs)
                want_names = None if want is None else [n.name for n in want]
                got_names = None if got is None else [n.name for n in got]
                assert got_names == want_names, (
                    f"{name}: pattern {pattern} from %{node.name}: you matched {got_names}, expected {want_names}"
                )


def check_attention_pattern(ns: dict[str, Any]) -> None:
    """attention_scores_pattern() fuses matmul -> div -> softmax of the transformer block into one group."""
    from mlc_lab import zoo
    from mlc_lab.ir import interpret
    from mlc_lab.passes.fusion import OperatorFusionPass, Pattern

    pattern = need(ns, "attention_scores_pattern")()
    assert isinstance(pattern, Pattern), "attention_scores_pattern() must return a Pattern (build it with chain(...))"
    model = zoo.load("transformer_block")
    graph = model.graph()
    fused = OperatorFusionPass([pattern]).apply(graph)
    groups = [n for n in fused.ops if n.op == "fused"]
    assert len(groups) == 1, f"expected exactly one fused group, found {len(groups)}"
    members = [n.op for n in groups[0].subgraph.ops]
    assert members == ["matmul", "div", "softmax"], f"the group holds {members}, expected matmul, div, softmax"
    inputs = model.numpy_inputs()
    assert (abs(interpret(fused, *inputs)[0] - interpret(graph, *inputs)[0]) < 1e-6).all(), "results changed"


def check_intermediate_traffic(ns: dict[str, Any]) -> None:
    """intermediate_traffic(graph) = bytes of intermediates written once + read once per user."""
    from mlc_lab import zoo
    from mlc_lab.metrics import graph_metrics
    from mlc_lab.passes.fusion import ElementwiseFusionPass

    student = need(ns, "intermediate_traffic")
    for name in ("mlp", "small_cnn", "transformer_block"):
        for graph in (zoo.load(name).graph(), ElementwiseFusionPass().apply(zoo.load(name).graph())):
            want = graph_metrics(graph).intermediate_traffic_bytes
            got = student(graph)
            assert got == want, f"{name} ({len(graph.ops)} kernels): you computed {got:,} bytes, expected {want:,}"
