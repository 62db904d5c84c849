"""Every official check refuses a plausible wrong answer (and accepts right answers it used to refuse).

The checks run in this process on a namespace holding the wrong answer (`run_check`, the same code
`mlc-lab grade` runs against a notebook's isolated process), so each case costs a check, not a kernel.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
from xdsl.dialects import arith
from xdsl.dialects.linalg.ops import GenericOp, MatmulOp, YieldOp
from xdsl.ir import Block, Region
from xdsl.pattern_rewriter import PatternRewriter, RewritePattern, op_type_rewrite_pattern

from mlc_lab.codegen.mlir.custom_pass import _float_constant, rewrite_text
from mlc_lab.grading import checks as checks_package
from mlc_lab.grading import list_checks, run_check
from mlc_lab.ir import Graph, GraphBuilder, GraphRewriter
from mlc_lab.passes import DeadCodeElimination, Pass
from mlc_lab.passes import rewrite as graph_rewrite

# -- chapter 1 ---------------------------------------------------------------------------------------


def build_mlp_without_relu(w1, b1, w2, b2) -> Graph:
    b = GraphBuilder("mlp")
    x = b.input("x", (2, 8))
    h = b.bias_add(b.dense(x, b.constant(w1, "w1")), b.constant(b1, "b1"), axis=-1)
    return b.build(b.bias_add(b.dense(h, b.constant(w2, "w2")), b.constant(b2, "b2"), axis=-1))


def conv_shape_without_dilation(input_nchw, out_channels, kernel, stride=1, padding=0, dilation=1):
    n, _, h, w = input_nchw
    return (n, out_channels, (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1)


class SimplifyIgnoringTypes(Pass):
    """Drops x+0 even when the zeros broadcast x to a bigger shape."""

    def run(self, graph: Graph) -> Graph:
        class Simplifier(GraphRewriter):
            def rewrite(self, node, inputs):
                identity = {"mul": 1.0, "add": 0.0}.get(node.op)
                if identity is not None:
                    for const, other in ((inputs[1], inputs[0]), (inputs[0], inputs[1])):
                        if const.op == "constant" and bool(np.all(const.value == identity)):
                            return other
                return super().rewrite(node, inputs)

        return DeadCodeElimination().apply(Simplifier(graph).run())


def register_hard_swish_without_six() -> None:
    """x * relu(x + 3) / 6: forgets that relu6 also clips at 6."""
    from mlc_lab.ir.ops import OpKind, register
    from mlc_lab.ir.ops.elementwise import unary_type

    def formula(ops, x):
        return ops.div(ops.mul(x, ops.maximum(ops.add(x, 3), 0)), 6)

    register("hard_swish", OpKind.ELEMWISE, unary_type("hard_swish"), None, scalar=formula)


# -- chapter 2 ---------------------------------------------------------------------------------------


def match_chain_ignoring_users(pattern, start, users, outputs):
    first, *rest = pattern.steps
    if start.op not in first.ops:
        return None
    matched = [start]
    for step in rest:
        nxt = users[matched[-1]][:1]  # takes the first user even when there are several
        if nxt and nxt[0].op in step.ops:
            matched.append(nxt[0])
        elif not step.optional:
            return None
    return matched


def attention_without_div():
    from mlc_lab.passes.fusion import chain

    return chain("attention_scores", "matmul", "softmax")


def traffic_one_read_each(graph: Graph) -> int:
    outputs = set(graph.outputs)
    return sum(2 * n.type.nbytes for n in graph.ops if n not in outputs)


class FuseSiLUAnySigmoid(graph_rewrite.RewritePattern):
    """Fuses mul(x, sigmoid(y)) whatever y is."""

    gate = graph_rewrite.op("sigmoid")(graph_rewrite.wildcard()).one_use()
    pattern = graph_rewrite.op("mul")(graph_rewrite.wildcard("x"), gate) | graph_rewrite.op("mul")(
        gate, graph_rewrite.wildcard("x")
    )

    def rewrite(self, match, rw):
        return rw.make("silu", (rw.value(match["x"]),), {}, name=match.root.name)


# -- chapter 3 ---------------------------------------------------------------------------------------


class CancelPairsOnly(Pass):
    """Removes A->B->A and identities, but leaves A->B->C chains unmerged."""

    def run(self, graph: Graph) -> Graph:
        class Rewriter(GraphRewriter):
            def rewrite(self, node, inputs):
                if node.op == "layout_transform":
                    if node.attrs["src_layout"] == node.attrs["dst_layout"]:
                        return inputs[0]
                    inner = inputs[0]
                    if inner.op == "layout_transform" and inner.attrs["src_layout"] == node.attrs["dst_layout"]:
                        return inner.inputs[0]
                return super().rewrite(node, inputs)

        return DeadCodeElimination().apply(Rewriter(graph).run())


def offset_blocked_as_nchw(layout, nchw_shape, n, c, h, w):
    N, C, H, W = nchw_shape
    if layout == "NHWC":
        return ((n * H + h) * W + w) * C + c
    return ((n * C + c) * H + h) * W + w


def peak_never_frees(graph: Graph) -> int:
    return sum(n.type.nbytes for n in graph.nodes if n.op != "constant")


# -- chapter 4 ---------------------------------------------------------------------------------------


def batch_matmul_script_first_b(batch: int, m: int, n: int, k: int) -> str:
    """Every batch multiplies by the first batch's B."""
    from tvm import te

    a = te.placeholder((batch, m, k), "float32", name="A")
    b = te.placeholder((batch, k, n), "float32", name="B")
    r = te.reduce_axis((0, k), name="r")
    c = te.compute((batch, m, n), lambda q, i, j: te.sum(a[q, i, r] * b[0, r, j], axis=r), name="C")
    return te.create_prim_func([a, b, c]).script()


def target_script_without_init_split() -> str:
    """The target's loops, but the reduction's init left inside the k loop (no decompose_reduction)."""
    from tvm import s_tir

    from mlc_lab.grading.checks.ch04_tensor_programs import TARGET_SIZE, exercise_kernel

    sch = s_tir.Schedule(exercise_kernel(TARGET_SIZE))
    i, j, k = sch.get_loops(sch.get_sblock("matmul"))
    i0, i1 = sch.split(i, factors=[None, 4])
    j0, j1 = sch.split(j, factors=[None, 32])
    sch.reorder(i0, j0, k, i1, j1)
    sch.parallel(sch.fuse(i0, j0))
    sch.vectorize(j1)
    return sch.mod.script()


def parallel_only_trace() -> str:
    """Only the outer loop in parallel: correct, but far from a register-tiled schedule."""
    from tvm import s_tir

    from mlc_lab.codegen.tvm.handwritten import trace_json
    from mlc_lab.grading.checks.ch04_tensor_programs import FAST_SIZE, exercise_kernel

    sch = s_tir.Schedule(exercise_kernel(FAST_SIZE))
    sch.parallel(sch.get_loops(sch.get_sblock("matmul"))[0])
    return trace_json(sch)


def legality_everything_allowed(script: str, block: str, primitive: str) -> dict:
    """Every loop may take every primitive: forgets that a reduction loop cannot run in parallel."""
    import tvm
    from tvm import s_tir

    sch = s_tir.Schedule(tvm.script.from_source(script))
    loops = sch.get_loops(sch.get_sblock(block))[1 if primitive == "reorder" else 0 :]
    return {str(sch.get(loop).loop_var.name): None for loop in loops}


# -- chapter 5 ---------------------------------------------------------------------------------------


def unordered_splits(extent, parts):
    if parts == 1:
        return [[extent]]
    return [
        [d, *rest]
        for d in range(1, extent + 1)
        if extent % d == 0
        for rest in unordered_splits(extent // d, parts - 1)
        if rest[0] >= d
    ]


def _random_strategy():
    from mlc_lab.tuning.strategies import SearchStrategy

    class RandomClimb(SearchStrategy):
        name = "not-climbing"

        def propose(self):
            return self._fresh(lambda: self.space.sample(self.rng))

    return RandomClimb


def tile_sizes_only(configs, m, n, k, rows, cols):
    """Features of the tile's own sizes (how many tiles, how big): nothing of how it maps onto the array."""
    return [
        {"log2 tiles": math.log2((m // c["tile_m"]) * (n // c["tile_n"]) * (k // c["tile_k"]))} for c in configs
    ]


# -- chapter 6 ---------------------------------------------------------------------------------------


def folds_always_os(m, n, k, rows, cols, dataflow):
    return math.ceil(m / rows) * math.ceil(n / cols)


def os_cycles_counted_from_one(m, n, k, rows, cols):
    return math.ceil(m / rows) * math.ceil(n / cols) * (k + rows + cols - 2)


def minimum_cores(work, min_cores, total):
    return list(min_cores)


# -- chapter 7 ---------------------------------------------------------------------------------------


def relu_with_reduction(rows: int, cols: int) -> str:
    """The lax answer from issue 14: a reduction iterator where relu has two parallel loops."""
    t = f"tensor<{rows}x{cols}xf32>"
    return f"""
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @main(%x: {t}) -> {t} {{
  %empty = tensor.empty() : {t}
  %y = linalg.generic {{indexing_maps = [#id, #id], iterator_types = ["parallel", "reduction"]}}
      ins(%x : {t}) outs(%empty : {t}) {{
  ^bb0(%in: f32, %out: f32):
    %zero = arith.constant 0.0 : f32
    %r = arith.maximumf %in, %zero : f32
    linalg.yield %r : f32
  }} -> {t}
  return %y : {t}
}}
"""


class FoldAnySub(RewritePattern):
    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: arith.SubfOp, rewriter: PatternRewriter) -> None:
        if _float_constant(op.rhs) is not None:  # x - c -> x for every constant c
            rewriter.replace(op, [], [op.lhs])


class FoldAnyBiasIntoMatmul(RewritePattern):
    """Folds `x @ W <any op> b` into the accumulator: `x @ W - b` becomes `x @ W + b`."""

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: GenericOp, rewriter: PatternRewriter) -> None:
        matmul = op.inputs[0].owner if len(op.inputs) == 2 else None
        if not isinstance(matmul, MatmulOp):
            return
        init, maps = matmul.outputs[0].owner.outputs[0], list(op.indexing_maps.data)
        body = Block(arg_types=[init.type.get_element_type()] * 2)
        body.add_op(YieldOp(body.args[0]))
        broadcast = GenericOp([op.inputs[1]], [init], Region(body), maps[1:], op.iterator_types, [init.type])
        accumulate = MatmulOp(list(matmul.inputs), [broadcast.results[0]], [r.type for r in matmul.results])
        rewriter.replace(op, [broadcast, accumulate])
        rewriter.erase(matmul)


# -- chapter 8 ---------------------------------------------------------------------------------------


def elu_ignoring_alpha(cx, x, alpha=1.0, scale=1.0, input_scale=1.0):
    negative = cx.op("minimum", x, cx.const(0.0, x.dtype, "zero"))
    tail = cx.op("sub", cx.op("exp", negative), cx.const(1.0, x.dtype, "one"))
    return cx.op("add", cx.op("relu", x), tail)


def backend_returning_zeros(graph, **options):
    shapes = [o.type.shape for o in graph.outputs]
    return lambda *inputs: [np.zeros(s, np.float32) for s in shapes]


WRONG_CAPTURED: list[int] = []


def counting_every_node(gm, example_inputs):
    WRONG_CAPTURED.append(len(gm.graph.nodes))  # placeholders and the output node too
    return gm.forward


# -- chapter 9 ---------------------------------------------------------------------------------------


def profile_of_flops_only(graph, peak_gflops, bandwidth_gbs):
    """Time from the FLOPs alone: every memory-bound kernel looks free."""
    from mlc_lab.ir import node_cost

    return sorted(((n.name, node_cost(n).flops / (peak_gflops * 1e9)) for n in graph.ops), key=lambda r: -r[1])


def fuse_first_pair(graph, peak_gflops, bandwidth_gbs):
    """The first producer with a single user and that user, whatever the profile says."""
    users, outputs = graph.users(), set(graph.outputs)
    first = next(n for n in graph.ops if n not in outputs and len(users[n]) == 1)
    return [first.name, users[first][0].name]


def interleaved_in_blocks(fns, rounds):
    samples = {name: [] for name in fns}
    for name, fn in fns.items():
        for _ in range(rounds):  # all rounds of one function, then the next: drift hits them unequally
            start = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in samples.items()}


# -- chapter 10 ---------------------------------------------------------------------------------------


def bind_blocks_only(sch):
    """One block per output row and no threads: it builds, but a block of one thread idles its warp."""
    i, _, _ = sch.get_loops(sch.get_sblock("C"))
    sch.bind(i, "blockIdx.x")


def tile_without_shared(sch):
    """The block and thread tiles of the exercise, but every thread reads A and B from global memory."""
    i, j, _ = sch.get_loops(sch.get_sblock("C"))
    i0, i1 = sch.split(i, [None, 16])
    j0, j1 = sch.split(j, [None, 16])
    sch.reorder(i0, j0, i1, j1)
    for loop, axis in ((i0, "blockIdx.y"), (j0, "blockIdx.x"), (i1, "threadIdx.y"), (j1, "threadIdx.x")):
        sch.bind(loop, axis)


def blocks_ignoring_registers(threads, registers, shared_bytes):
    limits = [64 // -(-threads // 32), 32] + ([164 * 1024 // shared_bytes] if shared_bytes else [])
    return min(limits)


# -- chapter 11 ---------------------------------------------------------------------------------------


def online_softmax_without_rescale(m, l, acc, s, v):  # noqa: E741 - the chapter's name for the running sum
    """Tracks the maximum but never rescales the old sums by exp(m - m_new)."""
    m_new = np.maximum(m, s.max(axis=1))
    p = np.exp(s - m_new[:, None])
    return m_new, l + p.sum(axis=1), acc + p @ v


def quantize_truncating(w):
    """The right scale, but truncation toward zero instead of rounding: errors up to a whole step."""
    peak = np.abs(w).max(axis=1)
    scales = np.where(peak > 0, peak / 127, 1.0).astype(np.float32)
    return (w / scales[:, None]).astype(np.int8), scales


def decode_bytes_weights_only(c):
    """Every weight once, but forgets the K and V cache that attention reads each step."""
    attention = (2 * c["heads"] + 2 * c["kv_heads"]) * c["head_dim"] * c["hidden"]
    return 4 * (c["layers"] * (attention + 3 * c["intermediate"] * c["hidden"]) + c["vocab"] * c["hidden"])


WRONG = {
    ("01_ir", "check_build_mlp"): ({"build_mlp": build_mlp_without_relu}, "differ"),
    ("01_ir", "check_conv_output_shape"): ({"conv2d_output_shape": conv_shape_without_dilation}, "wrong answer"),
    ("01_ir", "check_simplify_pass"): ({"SimplifyAlgebra": SimplifyIgnoringTypes}, "widening add"),
    ("01_ir", "check_new_op"): ({"register_hard_swish": register_hard_swish_without_six}, "differs from"),
    ("02_fusion", "check_match_chain"): ({"my_match_chain": match_chain_ignoring_users}, "you matched"),
    ("02_fusion", "check_attention_pattern"): ({"attention_scores_pattern": attention_without_div}, "fused group"),
    ("02_fusion", "check_intermediate_traffic"): ({"intermediate_traffic": traffic_one_read_each}, "wrong answer"),
    ("02_fusion", "check_silu_rule"): ({"FuseSiLU": FuseSiLUAnySigmoid}, "silu nodes"),
    ("03_layout", "check_cancel_transforms"): ({"SimplifyTransforms": CancelPairsOnly}, "remaining transforms"),
    ("03_layout", "check_offsets"): ({"offset": offset_blocked_as_nchw}, "NCHW8c"),
    ("03_layout", "check_peak_live"): ({"peak_live_bytes": peak_never_frees}, "wrong answer"),
    ("04_tensor_programs", "check_batch_matmul"): (
        {"batch_matmul": lambda a, b: None, "batch_matmul_script": batch_matmul_script_first_b},
        "C is not A @ B per batch",
    ),
    ("04_tensor_programs", "check_to_target"): (
        {"to_target": lambda sch: None, "to_target_script": target_script_without_init_split},
        "your module differs from the target",
    ),
    ("04_tensor_programs", "check_fast_schedule"): (
        {"schedule_fast": lambda sch: None, "fast_trace": parallel_only_trace},
        "the reference schedule's speed",
    ),
    ("04_tensor_programs", "check_legality"): ({"legality": legality_everything_allowed}, "wrong verdict"),
    ("05_tuning", "check_tile_splits"): ({"tile_splits": unordered_splits}, "wrong answer"),
    ("05_tuning", "check_hill_climb"): ({"HillClimb": _random_strategy}, "optimum"),
    ("05_tuning", "check_cost_model_feature"): ({"tile_features": tile_sizes_only}, "without them"),
    ("06_accelerators", "check_fold_count"): ({"fold_count": folds_always_os}, "wrong answer"),
    ("06_accelerators", "check_os_cycles_match_scalesim"): ({"os_compute_cycles": os_cycles_counted_from_one}, "wrong"),
    ("06_accelerators", "check_allocate_cores"): ({"allocate_cores": minimum_cores}, "slowest stage"),
    ("06_accelerators", "check_choose_mapping"): ({"choose_mapping": lambda m, n, k, rows, cols: "os"}, "per-layer"),
    ("07_mlir", "check_relu_generic"): ({"relu_generic_text": relu_with_reduction}, "both loops are parallel"),
    ("07_mlir", "check_fold_sub_zero"): ({"FoldSubZero": FoldAnySub}, "x - 1.0 must stay"),
    ("07_mlir", "check_loops_pipeline"): ({"loops_pipeline": lambda: "canonicalize"}, "linalg ops remain"),
    ("07_mlir", "check_fold_bias_into_matmul"): (
        {"fold_bias_into_matmul": lambda text: rewrite_text(text, [FoldAnyBiasIntoMatmul])},
        "must stay a subtraction",
    ),
    ("08_frameworks", "check_elu_converter"): ({"elu": elu_ignoring_alpha}, "alpha=0.5"),
    ("08_frameworks", "check_register_backend"): ({"build_tvm_naive": backend_returning_zeros}, "differs"),
    ("08_frameworks", "check_counting_backend"): (
        {"counting_backend": counting_every_node, "CAPTURED": WRONG_CAPTURED},
        "CAPTURED is",
    ),
    ("09_performance", "check_kernel_profile"): ({"kernel_profile": profile_of_flops_only}, "the roofline model"),
    ("09_performance", "check_profile_guided_fusion"): ({"best_fusion": fuse_first_pair}, "the best group saves"),
    ("09_performance", "check_interleaved_timer"): ({"interleaved": interleaved_in_blocks}, "not interleaved"),
    ("10_gpus", "check_bind_to_threads"): ({"bind_to_threads": bind_blocks_only}, "threadIdx"),
    ("10_gpus", "check_tile_shared"): ({"tile_shared": tile_without_shared}, "no __shared__"),
    ("10_gpus", "check_blocks_per_sm"): ({"blocks_per_sm": blocks_ignoring_registers}, "wrong answer"),
    ("11_llm", "check_online_softmax"): ({"online_softmax_update": online_softmax_without_rescale}, "differs"),
    ("11_llm", "check_quantize"): ({"quantize": quantize_truncating}, "steps"),
    ("11_llm", "check_decode_bytes"): ({"decode_bytes_per_token": decode_bytes_weights_only}, "wrong answer"),
}
#: Classes built lazily (they import the tuner): the entry holds a factory.
FACTORIES = {("05_tuning", "check_hill_climb")}


def test_every_official_check_has_a_wrong_answer_case() -> None:
    """Every check of every shipped module (mlc_lab/grading/checks/chNN_*.py), not only those listed."""
    from mlc_lab.grading.grader import check_modules

    modules = sorted(Path(checks_package.__file__).parent.glob("ch[0-9]*.py"))
    stems = [m.stem[2:] for m in modules]  # ch04_tensor_programs -> 04_tensor_programs
    assert len(stems) >= 10, stems
    official = {(stem, name) for stem in stems for name in list_checks(stem)}
    assert official == set(WRONG), {"without a wrong answer": official - set(WRONG), "stale": set(WRONG) - official}
    assert all(check_modules(stem) for stem in stems)


@pytest.mark.parametrize("key", sorted(WRONG), ids=lambda k: f"{k[0]}-{k[1]}")
def test_wrong_answer_fails(key: tuple[str, str]) -> None:
    namespace, reason = WRONG[key]
    namespace = dict(namespace)
    if key in FACTORIES:
        namespace = {name: make() for name, make in namespace.items()}
    with pytest.raises(AssertionError) as failed:
        run_check(*key, namespace)
    assert reason in str(failed.value), str(failed.value)


def test_the_standard_pipeline_spelling_is_accepted() -> None:
    """07.3: `builtin.module(...)` around the passes is how MLIR prints pipelines; the stage adds it too."""
    run_check(
        "07_mlir",
        "check_loops_pipeline",
        {"loops_pipeline": lambda: "builtin.module(func.func(convert-linalg-to-loops))"},
    )
