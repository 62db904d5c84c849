"""The rewrite engine: the pattern language, the greedy driver, the passes built on it (as before/after IR
text), the fusion matcher against the chain matcher it replaced, and passes as named option records."""

import textwrap

import numpy as np
import pytest
from graph_strategies import random_conv_graphs, random_graphs
from hypothesis import HealthCheck, given, settings

from mlc_lab import zoo
from mlc_lab.ir import GraphBuilder, interpret
from mlc_lab.ir.equality import graph_diff
from mlc_lab.ir.parser import parse_graph
from mlc_lab.passes import DeadCodeElimination, ElementwiseFusionPass, FoldConstants, OperatorFusionPass
from mlc_lab.passes.fusion import PATTERNS, FoldBatchNorm, chain, find_matches, match_chain
from mlc_lab.passes.memory import CancelLayoutTransforms, MemoryLayout, MemoryLayoutOptimizer
from mlc_lab.passes.rewrite import (
    Match,
    MatchContext,
    RewriteError,
    RewritePattern,
    apply_patterns,
    const,
    op,
    wildcard,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_rewrites(pass_, before: str, after: str) -> None:
    """Apply `pass_` to the graph `before` describes; the result must be, bit for bit, the graph `after` describes."""
    graph = parse_graph(textwrap.dedent(before))
    got = pass_.apply(graph)
    diff = graph_diff(got, parse_graph(textwrap.dedent(after)))
    assert diff is None, f"{diff}\n--- {pass_!r} gave:\n{got}"
    x = [np.random.default_rng(0).standard_normal(i.type.shape).astype(i.type.dtype) for i in graph.inputs]
    for a, b in zip(interpret(got, *x), interpret(graph, *x), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


# == before / after ===============================================================================
def test_fold_batch_norm_into_conv_and_bias():
    """s = gamma / sqrt(var + eps) = [2, 1]: W*s = [3, -1]; (b - mean) * s + beta = [0.5, 2]."""
    assert_rewrites(
        FoldBatchNorm(),
        """
        graph block(%x: f32[1, 1, 2, 2]) -> (f32[1, 2, 2, 2]) {
          %w = constant [[[[1.5]]], [[[-1.]]]] : f32[2, 1, 1, 1]
          %conv = conv2d(%x, %w) : f32[1, 2, 2, 2]
          %b = constant [1., 2.] : f32[2]
          %biased = bias_add(%conv, %b) : f32[1, 2, 2, 2]
          %gamma = constant [4., 2.] : f32[2]
          %beta = constant [0.5, 0.] : f32[2]
          %mean = constant [1., 0.] : f32[2]
          %var = constant [3., 3.] : f32[2]
          %bn = batch_norm(%biased, %gamma, %beta, %mean, %var) {eps=1.0} : f32[1, 2, 2, 2]
          %relu = relu(%bn) : f32[1, 2, 2, 2]
          return %relu
        }""",
        """
        graph block(%x: f32[1, 1, 2, 2]) -> (f32[1, 2, 2, 2]) {
          %w_folded = constant [[[[3.]]], [[[-1.]]]] : f32[2, 1, 1, 1]
          %bn_bias = constant [0.5, 2.] : f32[2]
          %conv = conv2d(%x, %w_folded) : f32[1, 2, 2, 2]
          %bn = bias_add(%conv, %bn_bias) : f32[1, 2, 2, 2]
          %relu = relu(%bn) : f32[1, 2, 2, 2]
          return %relu
        }""",
    )


def test_fold_batch_norm_leaves_a_conv_read_twice():
    text = """
        graph shared(%x: f32[1, 1, 2, 2]) -> (f32[1, 2, 2, 2], f32[1, 2, 2, 2]) {
          %w = constant [[[[1.5]]], [[[-1.]]]] : f32[2, 1, 1, 1]
          %conv = conv2d(%x, %w) : f32[1, 2, 2, 2]
          %one = constant [1., 1.] : f32[2]
          %zero = constant [0., 0.] : f32[2]
          %bn = batch_norm(%conv, %one, %zero, %zero, %one) : f32[1, 2, 2, 2]
          return %bn, %conv
        }"""
    assert_rewrites(FoldBatchNorm(), text, text)


def test_fold_batch_norm_reaches_a_fixpoint():
    """bn(bn(conv)): folding the inner one leaves bias_add(conv), which the outer one folds into next sweep."""
    b = GraphBuilder("twice")
    x = b.input("x", (1, 3, 5, 5))
    rng = np.random.default_rng(0)

    def c(*shape, low=0.0):
        return b.constant((rng.standard_normal(shape) + low).astype(np.float32))

    y = b.conv2d(x, c(4, 3, 3, 3))
    for _ in range(2):
        y = b.batch_norm(y, c(4), c(4), c(4), b.constant(np.full(4, 0.7, np.float32)))
    graph = b.build(b.relu(y))
    folded = FoldBatchNorm().apply(graph)
    assert folded.op_counts() == {"conv2d": 1, "bias_add": 1, "relu": 1}
    inputs = rng.standard_normal((1, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(interpret(folded, inputs)[0], interpret(graph, inputs)[0], rtol=1e-5, atol=1e-5)


def test_cancel_layout_transforms():
    """A->B->A cancels, A->B->C merges into A->C, A->A disappears; dead transforms are gone."""
    assert_rewrites(
        CancelLayoutTransforms(),
        """
        graph transforms(%x: f32[1, 8, 2, 2]) -> (f32[1, 8, 2, 2], f32[1, 2, 2, 2, 4], f32[1, 8, 2, 2]) {
          %to_nhwc = layout_transform(%x) {dst_layout="NHWC"} : f32[1, 2, 2, 8]
          %back = layout_transform(%to_nhwc) {src_layout="NHWC"} : f32[1, 8, 2, 2]
          %a = relu(%back) : f32[1, 8, 2, 2]
          %step1 = layout_transform(%a) {dst_layout="NHWC"} : f32[1, 2, 2, 8]
          %step2 = layout_transform(%step1) {src_layout="NHWC", dst_layout="NCHW4c"} : f32[1, 2, 2, 2, 4]
          %same = layout_transform(%x) : f32[1, 8, 2, 2]
          %n = neg(%same) : f32[1, 8, 2, 2]
          return %a, %step2, %n
        }""",
        """
        graph transforms(%x: f32[1, 8, 2, 2]) -> (f32[1, 8, 2, 2], f32[1, 2, 2, 2, 4], f32[1, 8, 2, 2]) {
          %a = relu(%x) : f32[1, 8, 2, 2]
          %step2 = layout_transform(%a) {dst_layout="NCHW4c"} : f32[1, 2, 2, 2, 4]
          %n = neg(%x) : f32[1, 8, 2, 2]
          return %a, %step2, %n
        }""",
    )


def test_three_transforms_in_a_row_collapse_over_sweeps():
    assert_rewrites(
        CancelLayoutTransforms(),
        """
        graph chain(%x: f32[1, 8, 2, 2]) -> (f32[1, 8, 2, 2]) {
          %t1 = layout_transform(%x) {dst_layout="NHWC"} : f32[1, 2, 2, 8]
          %t2 = layout_transform(%t1) {src_layout="NHWC", dst_layout="NCHW8c"} : f32[1, 1, 2, 2, 8]
          %t3 = layout_transform(%t2) {src_layout="NCHW8c"} : f32[1, 8, 2, 2]
          return %t3
        }""",
        """
        graph chain(%x: f32[1, 8, 2, 2]) -> (f32[1, 8, 2, 2]) {
          return %x
        }""",
    )


def test_operator_fusion_outlines_dense_bias_relu():
    assert_rewrites(
        OperatorFusionPass(fusion_patterns=["matmul_add_relu"]),
        """
        graph layer(%x: f32[1, 3]) -> (f32[1, 2]) {
          %w = constant [[1., 0., 2.], [0., 1., -1.]] : f32[2, 3]
          %b = constant [0.5, -0.5] : f32[2]
          %dense = dense(%x, %w) : f32[1, 2]
          %add = bias_add(%dense, %b) {axis=-1} : f32[1, 2]
          %relu = relu(%add) : f32[1, 2]
          return %relu
        }""",
        """
        graph layer(%x: f32[1, 3]) -> (f32[1, 2]) {
          %w = constant [[1., 0., 2.], [0., 1., -1.]] : f32[2, 3]
          %b = constant [0.5, -0.5] : f32[2]
          %fused_matmul_add_relu = fused(%x, %w, %b) {pattern="matmul_add_relu"} : f32[1, 2] {
              // %p0 = %x, %p1 = %w, %p2 = %b
              %dense = dense(%p0, %p1) : f32[1, 2]
              %add = bias_add(%dense, %p2) {axis=-1} : f32[1, 2]
              %relu = relu(%add) : f32[1, 2]
              return %relu
          }
          return %fused_matmul_add_relu
        }""",
    )


def test_nhwc_layout_pass():
    assert_rewrites(
        MemoryLayoutOptimizer(target_layout=MemoryLayout.NHWC),
        """
        graph conv(%x: f32[1, 1, 3, 3]) -> (f32[1, 2, 3, 3]) {
          %w = constant [[[[1.]]], [[[2.]]]] : f32[2, 1, 1, 1]
          %conv = conv2d(%x, %w) : f32[1, 2, 3, 3]
          %b = constant [0.5, -1.] : f32[2]
          %biased = bias_add(%conv, %b) : f32[1, 2, 3, 3]
          %relu = relu(%biased) : f32[1, 2, 3, 3]
          return %relu
        }""",
        """
        graph conv(%x: f32[1, 1, 3, 3]) -> (f32[1, 2, 3, 3]) {
          %w_HWIO = constant [[[[1., 2.]]]] : f32[1, 1, 1, 2]
          %x_NHWC = layout_transform(%x) {dst_layout="NHWC"} : f32[1, 3, 3, 1]
          %conv = conv2d(%x_NHWC, %w_HWIO) {data_layout="NHWC", kernel_layout="HWIO"} : f32[1, 3, 3, 2]
          %b = constant [0.5, -1.] : f32[2]
          %biased = bias_add(%conv, %b) {axis=3} : f32[1, 3, 3, 2]
          %relu = relu(%biased) : f32[1, 3, 3, 2]
          %relu_NCHW = layout_transform(%relu) {src_layout="NHWC"} : f32[1, 2, 3, 3]
          return %relu_NCHW
        }""",
    )


# == the pattern language ==========================================================================
def small_graph():
    b = GraphBuilder("g")
    x = b.input("x", (2, 3))
    y = b.input("y", (2, 3))
    c = b.constant(np.ones((2, 3), np.float32), "c")
    same = b.add(x, x, name="same")
    other = b.add(x, y, name="other")
    with_c = b.mul(other, c, name="with_c")
    r = b.relu(with_c, name="r")
    return b.build([b.sub(same, r, name="out"), b.neg(r, name="n")])


def matches_at(pattern, graph, name):
    return list(pattern.matches(graph.node(name), MatchContext.of(graph)))


def test_a_name_captured_twice_is_one_node():
    g = small_graph()
    twice = op("add")(wildcard("a"), wildcard("a"))
    assert [m["a"].name for m in matches_at(twice, g, "same")] == ["x"]
    assert matches_at(twice, g, "other") == []


def test_ops_constants_attributes_and_free_rest():
    g = small_graph()
    m = op("mul")(op("add").named("sum"), const("k")).match(g.node("with_c"), MatchContext.of(g))
    assert isinstance(m, Match) and m["sum"].name == "other" and m["k"].name == "c"
    assert [n.name for n in m.nodes] == ["with_c", "other", "c"]  # wildcards are not inspected; op() is
    assert matches_at(op("mul")(const(), wildcard()), g, "with_c") == []  # positions matter
    assert len(matches_at(op("mul")(op("add"), ...), g, "with_c")) == 1
    assert matches_at(op("mul")(op("add")), g, "with_c") == []  # without `...` the arity must match
    assert len(matches_at(op("add", "sub")(), g, "out")) == 0 and len(matches_at(op("add", "sub"), g, "out")) == 1
    b = GraphBuilder("attrs")
    x = b.input("x", (1, 4))
    s = b.softmax(x, axis=0, name="s")
    g2 = b.build(s)
    assert matches_at(op("softmax", axis=-1), g2, "s") == [] and len(matches_at(op("softmax", axis=0), g2, "s")) == 1
    with pytest.raises(KeyError, match="captured no 'nope'"):
        m["nope"]
    with pytest.raises(TypeError, match="must be patterns"):
        op("add")("x")


def test_one_use_where_and_alternatives_backtrack():
    g = small_graph()
    assert matches_at(op("neg")(op("relu").one_use()), g, "n") == []  # r is read by n and out
    assert len(matches_at(op("neg")(op("relu")), g, "n")) == 1
    assert len(matches_at(op("add").where(lambda n: n.inputs[0] is n.inputs[1]), g, "same")) == 1
    assert matches_at(op("add").where(lambda n: n.inputs[0] is n.inputs[1]), g, "other") == []
    # with_operand tries every input; alternatives are tried in order, all of them
    either = op("sub").with_operand(op("relu").named("r") | op("add").named("a"))
    assert [sorted(m.captures) for m in matches_at(either, g, "out")] == [["a"], ["r"]]


# == the driver ====================================================================================
class FoldDoubleNeg(RewritePattern):
    pattern = op("neg")(op("neg")(wildcard("x")))

    def rewrite(self, match, rw):
        return rw.value(match["x"])


def neg_chain(n):
    b = GraphBuilder("negs")
    x = b.input("x", (3,))
    y = x
    for _ in range(n):
        y = b.neg(y)
    dead = b.exp(x, name="dead")
    assert dead.name == "dead"
    return b.build(b.relu(y))


def test_driver_runs_to_a_fixpoint_and_removes_dead_code():
    for n in (4, 5):
        out = apply_patterns(neg_chain(n), [FoldDoubleNeg()])
        assert out.op_counts() == ({"relu": 1} if n % 2 == 0 else {"neg": 1, "relu": 1})
        x = np.array([-1.0, 0.5, 2.0], np.float32)
        np.testing.assert_array_equal(interpret(out, x)[0], interpret(neg_chain(n), x)[0])
    assert "dead" not in {n.name for n in apply_patterns(neg_chain(1), [FoldDoubleNeg()]).nodes}


def test_rewrites_that_undo_each_other_are_stopped():
    class ReluToAbs(RewritePattern):
        pattern = op("relu")(wildcard("x"))

        def rewrite(self, match, rw):
            return rw.make("abs", [rw.value(match["x"])], name=match.root.name)

    class AbsToRelu(RewritePattern):
        pattern = op("abs")(wildcard("x"))

        def rewrite(self, match, rw):
            return rw.make("relu", [rw.value(match["x"])], name=match.root.name)

    with pytest.raises(RewriteError, match=r"\[ReluToAbs, AbsToRelu\] still matched after 5 sweeps"):
        apply_patterns(neg_chain(0), [ReluToAbs(), AbsToRelu()], max_sweeps=5)


def test_a_rewrite_that_changes_the_type_or_reads_what_it_consumed_is_refused():
    class SumInstead(RewritePattern):
        pattern = op("relu")(wildcard("x"))

        def rewrite(self, match, rw):
            return rw.make("sum", [rw.value(match["x"])], name="s")

    with pytest.raises(RewriteError, match=r"SumInstead replaced %relu \(f32\[3\]\) by %s of type f32\[\]"):
        apply_patterns(neg_chain(0), [SumInstead()])

    class ReadsInner(RewritePattern):
        pattern = op("neg")(op("neg").named("inner"))

        def rewrite(self, match, rw):
            return rw.value(match["inner"])

    with pytest.raises(RewriteError, match="%neg was consumed by the match"):
        apply_patterns(neg_chain(2), [ReadsInner()])

    class BadAttr(RewritePattern):
        pattern = op("relu")(wildcard("x"))

        def rewrite(self, match, rw):
            return rw.make("softmax", [rw.value(match["x"])], {"axes": 0}, name="s")

    with pytest.raises(RewriteError, match="building %s: softmax: unknown attribute"):
        apply_patterns(neg_chain(0), [BadAttr()])


# == fusion: the pattern-language matcher against the chain matcher it replaced ====================
CHAINS = [*PATTERNS.values(), chain("softmax_chain", "matmul", "div|mul?", "softmax"), chain("relus", "relu", "relu")]


def chain_matcher_groups(graph, patterns):
    """The fusion pass's former matcher: forward from each node in order, the first pattern that fits wins."""
    users, outputs = graph.users(), set(graph.outputs)
    taken, groups = set(), []
    for node in graph.nodes:
        if node in taken:
            continue
        for pattern in patterns:
            members = match_chain(pattern, node, users, outputs)
            if members and len(members) > 1 and not taken & set(members):
                groups.append(([m.name for m in members], pattern.name))
                taken |= set(members)
                break
    return groups


def same_groups(graph):
    for patterns in (CHAINS, sorted(CHAINS, key=lambda p: -len(p.steps))):
        got = [([m.name for m in members], name) for members, name in find_matches(graph, patterns)]
        assert got == chain_matcher_groups(graph, patterns)


def test_fusion_matches_equal_the_chain_matcher_on_the_zoo():
    for name in zoo.names():
        graph = zoo.load(name).graph()
        same_groups(graph)
        same_groups(ElementwiseFusionPass().apply(graph))


@FAST
@given(random_conv_graphs())
def test_fusion_matches_equal_the_chain_matcher_on_conv_graphs(graph):
    same_groups(graph)


@FAST
@given(random_graphs())
def test_fusion_matches_equal_the_chain_matcher_on_dense_graphs(rg):
    same_groups(rg.graph)


def test_an_optional_step_sharing_ops_with_the_next_is_backtracked():
    """dense -> relu (read twice): the chain matcher takes relu for `relu?`, then fails `relu`;
    the pattern language backtracks and matches [dense, relu] for the required step."""
    b = GraphBuilder("g")
    x = b.input("x", (1, 4))
    r = b.relu(b.dense(x, b.constant(np.eye(4, dtype=np.float32), "w"), name="d"), name="r")
    graph = b.build([b.neg(r), b.exp(r)])
    pattern = chain("dense_relu", "dense", "relu?", "relu")
    assert match_chain(pattern, graph.node("d"), graph.users(), set(graph.outputs)) is None
    assert [[n.name for n in members] for members, _ in find_matches(graph, [pattern])] == [["d", "r"]]


# == passes are named, with their options as fields ================================================
def test_passes_carry_their_options():
    assert OperatorFusionPass(fusion_patterns=["conv2d_bn_relu", "matmul_add"]) == OperatorFusionPass()
    assert OperatorFusionPass().options == {"fusion_patterns": ("conv2d_bn_relu", "matmul_add")}
    assert [p.name for p in OperatorFusionPass(["matmul_add", "conv2d_bn_relu"]).patterns] == [
        "conv2d_bn_relu",
        "matmul_add",
    ]  # longest first
    assert repr(FoldConstants(max_elements=100)) == "FoldConstants(max_elements=100)"
    assert repr(DeadCodeElimination()) == "DeadCodeElimination()"
    assert DeadCodeElimination().name == "DeadCodeElimination"
    layout = MemoryLayoutOptimizer(target_layout=MemoryLayout.NCHW8c)
    assert layout.options == {"target_layout": "NCHW8c"} and layout.target == "NCHW8c"
    assert ElementwiseFusionPass(max_group_size=8).options == {"max_group_size": 8}
    with pytest.raises(AttributeError):
        layout.target_layout = "NHWC"  # options are fixed once made


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown fusion pattern 'conv_bn'"):
        OperatorFusionPass(["conv_bn"])
    with pytest.raises(TypeError, match="must be a list of patterns, got 'conv2d_bn_relu'"):
        OperatorFusionPass("conv2d_bn_relu")
    with pytest.raises(ValueError, match="max_elements must be a non-negative int or None, got -1"):
        FoldConstants(max_elements=-1)
    with pytest.raises(ValueError, match="max_group_size must be a positive int, got 0"):
        ElementwiseFusionPass(max_group_size=0)
    with pytest.raises(ValueError, match="unsupported layout 'NCWH'"):
        MemoryLayoutOptimizer(target_layout="NCWH")
