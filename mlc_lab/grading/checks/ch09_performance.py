"""Official checks for exercises/09_performance.md (measuring performance honestly)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlc_lab.grading.session import Grading, check, show


def roofline_seconds(node: Any, peak_gflops: float, bandwidth_gbs: float) -> float:
    """The cost model's time of one kernel: its FLOPs at peak or its bytes at full bandwidth, whichever is longer."""
    from mlc_lab.ir import node_cost

    cost = node_cost(node)
    return max(cost.flops / (peak_gflops * 1e9), cost.bytes / (bandwidth_gbs * 1e9))


def modelled_total(graph: Any, peak_gflops: float, bandwidth_gbs: float) -> float:
    return sum(roofline_seconds(n, peak_gflops, bandwidth_gbs) for n in graph.ops)


#: zoo networks the profile checks use (unfused: every op is a kernel), and the machines drawn per run
PROFILE_MODELS = ("small_cnn", "transformer_block", "mlp")


def _machine(g: Grading) -> tuple[float, float]:
    return float(np.round(g.rng.uniform(20, 200), 1)), float(np.round(g.rng.uniform(5, 50), 1))


@check(points=2)
def check_kernel_profile(g: Grading) -> None:
    """kernel_profile(graph, peak_gflops, bandwidth_gbs): [(kernel name, modelled seconds)] hottest first,
    one entry per top-level op, seconds = max(FLOPs / peak, bytes / bandwidth) from the op registry's cost."""
    from mlc_lab.grading.probes import zoo_graph

    fn = g.need("kernel_profile")
    for name in PROFILE_MODELS:
        for fused in (False, True):
            peak, bandwidth = _machine(g)
            graph = zoo_graph(name, fused)
            want = {n.name: roofline_seconds(n, peak, bandwidth) for n in graph.ops}
            label = (
                f"kernel_profile({name}{' (fused)' if fused else ''}, peak={peak} GFLOP/s, bandwidth={bandwidth} GB/s)"
            )
            with g.case(label) as case:
                got = fn(graph, peak, bandwidth)  # the graph travels: the student's process needs no zoo
                case.got = show(got)
                top = max(want, key=want.get)
                case.expected = f"{len(want)} kernels, hottest {top} at {want[top]:.3g} s"
                rows = [(str(r[0]), float(r[1])) for r in got]
                assert len(rows) == len(want), f"expected one entry per kernel ({len(want)}), got {len(rows)}"
                seconds = dict(rows)
                assert set(seconds) == set(want), f"kernels not in the graph: {sorted(set(seconds) - set(want))[:3]}"
                for kernel, t in want.items():
                    assert np.isclose(seconds[kernel], t, rtol=1e-6), (
                        f"{kernel}: {seconds[kernel]:.4g} s, the roofline model gives {t:.4g} s"
                    )
                times = [t for _, t in rows]
                assert all(a >= b for a, b in zip(times, times[1:])), "the profile is not sorted hottest first"


def gemm_ops(members: list[Any]) -> int:
    """How many contractions (conv, dense, matmul) a group holds: a kernel is built around at most one."""
    from mlc_lab.ir.ops import Trait, has_trait

    return sum(has_trait(n.op, Trait.GEMM) for n in members)


def fusion_candidates(graph: Any, longest: int = 6) -> list[list[Any]]:
    """Every chain producer -> its only user -> ... (2 to `longest` ops, at most one GEMM) that outlining accepts."""
    from mlc_lab.ir.ops import is_source

    users, outputs = graph.users(), set(graph.outputs)
    chains = []
    for start in graph.ops:
        chain = [start]
        while len(chain) < longest:
            last = chain[-1]
            if last in outputs or len(users[last]) != 1 or is_source(users[last][0].op):
                break
            chain = [*chain, users[last][0]]
            if gemm_ops(chain) > 1:
                break
            chains.append(chain)
    return chains


def fusion_saving(graph: Any, members: list[Any], peak: float, bandwidth: float) -> float:
    """Modelled seconds saved by outlining `members` into one fused kernel (FusionError if it cannot be)."""
    from mlc_lab.passes.fusion.group import outline_groups

    fused = outline_groups(graph, [(members, "exercise")])
    return modelled_total(graph, peak, bandwidth) - modelled_total(fused, peak, bandwidth)


@check(points=3, forbids=("mlc_lab.passes.fusion.ElementwiseFusionPass", "mlc_lab.passes.fusion.OperatorFusionPass"))
def check_profile_guided_fusion(g: Grading) -> None:
    """best_fusion(graph, peak_gflops, bandwidth_gbs) -> names of the ops to fuse into one kernel (at most one
    GEMM op in it): the group whose fusion saves the most modelled time (within 1% of the best chain found here)."""
    from mlc_lab.grading.probes import zoo_graph
    from mlc_lab.passes.fusion.group import FusionError

    fn = g.need("best_fusion")
    for name in PROFILE_MODELS:
        peak, bandwidth = _machine(g)
        graph = zoo_graph(name, False)
        best = max(fusion_saving(graph, c, peak, bandwidth) for c in fusion_candidates(graph))
        with g.case(f"best_fusion({name}, peak={peak} GFLOP/s, bandwidth={bandwidth} GB/s)") as case:
            case.expected = (
                f"a group saving >= {0.99 * best:.4g} s of the modelled {modelled_total(graph, peak, bandwidth):.4g} s"
            )
            names = [str(n) for n in fn(graph, peak, bandwidth)]
            case.got = show(names)
            by_name = {n.name: n for n in graph.ops}
            unknown = [n for n in names if n not in by_name]
            assert not unknown, f"not ops of the graph: {unknown[:3]}"
            assert len(set(names)) == len(names) >= 2, "a fused kernel needs at least two different ops"
            members = [by_name[n] for n in names]
            assert gemm_ops(members) <= 1, "a kernel holds at most one conv/dense/matmul: your group has more"
            try:
                saved = fusion_saving(graph, members, peak, bandwidth)
            except FusionError as exc:
                raise AssertionError(f"that group cannot be one kernel: {exc}") from None
            case.got = f"{show(names)} saves {saved:.4g} s"
            assert saved >= 0.99 * best, (
                f"fusing {names} saves {saved:.4g} s of modelled time, the best group saves {best:.4g} s: "
                "look at the hottest memory-bound kernels and the intermediates their neighbours write"
            )


@check(points=2, forbids=("mlc_lab.bench.interleaved_medians",))
def check_interleaved_timer(g: Grading) -> None:
    """interleaved(fns, rounds): times every function once per round, round-robin; returns name -> median."""
    g.need("interleaved")
    names = ["a", "b", "c", "d"][: int(g.rng.integers(2, 5))]
    rounds = int(g.rng.integers(3, 7))
    with g.case(f"interleaved({{{', '.join(names)}}}, rounds={rounds})") as case:
        answer = g.probe("interleaved_order", "interleaved", names, rounds)
        calls, result = list(answer["order"]), answer["result"]
        case.got = f"calls {calls}, result {result}"
        assert set(result) == set(names), f"expected a median for each of {names}; got keys {sorted(result)}"
        k = len(names)
        assert len(calls) >= k * rounds, (
            f"each function must run once per round: saw {len(calls)} calls for {rounds} rounds"
        )
        timed = calls[-k * rounds :]  # warm-up calls before the timed rounds are fine
        for r in range(rounds):
            chunk = timed[k * r : k * r + k]
            assert sorted(chunk) == sorted(names), (
                f"calls are not interleaved round by round: {calls} (each round should call {', '.join(names)} once)"
            )
        assert all(isinstance(v, float) and v >= 0 for v in result.values()), "medians must be non-negative floats"
