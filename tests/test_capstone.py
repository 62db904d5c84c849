"""The capstone's checks refuse plausible wrong answers (the solution passing is tests/test_course_grading.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mlc_lab.grading import run_check
from mlc_lab.passes import DeadCodeElimination, ElementwiseFusionPass, FoldConstants
from mlc_lab.passes.rewrite import RewritePattern, const, op, wildcard


def _rule(one_use: bool = True, use_scale: bool = True) -> type[RewritePattern]:
    def once(p):
        return p.one_use() if one_use else p

    scores = once(op("matmul")(wildcard("q"), once(op("transpose")(wildcard("k")))))
    probs = once(op("softmax")(once(op("add")(once(op("mul")(scores, const("scale"))), wildcard("mask")))))

    class Rule(RewritePattern):
        pattern = op("matmul")(probs, wildcard("v"))

        def rewrite(self, match, rw):
            scale = float(np.asarray(match["scale"].value).reshape(())) if use_scale else 1.0
            inputs = [rw.value(match[n]) for n in ("q", "k", "v", "mask")]
            return rw.make("fused_attention", inputs, {"scale": scale, "causal": False}, name=match.root.name)

    return Rule


def test_a_rule_that_also_fuses_a_shared_softmax_fails():
    with pytest.raises(AssertionError, match="must keep its softmax"):
        run_check("capstone", "check_attention_rule", {"FuseSDPA": _rule(one_use=False)})


def test_a_rule_that_drops_the_scale_fails():
    with pytest.raises(AssertionError, match="differs from the original"):
        run_check("capstone", "check_attention_rule", {"FuseSDPA": _rule(use_scale=False)})


def test_the_right_rule_passes():
    run_check("capstone", "check_attention_rule", {"FuseSDPA": _rule()})


@pytest.mark.slow
def test_a_pipeline_without_the_attention_rule_fails(request):
    """Compiles DistilBERT (~10 s): elementwise fusion alone leaves every softmax in place."""
    if not request.config.getoption("--slow"):
        pytest.skip("compiles a model: run with --slow")
    passes = {"capstone_passes": lambda: [FoldConstants(), ElementwiseFusionPass(), DeadCodeElimination()]}
    with pytest.raises(AssertionError, match="fused_attention"):
        run_check("capstone", "check_capstone_model", passes)
