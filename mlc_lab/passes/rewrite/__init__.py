"""Declarative graph rewrites: a pattern language (`op`, `wildcard`, `const`) and a greedy driver.

    class FoldDoubleNeg(RewritePattern):
        pattern = op("neg")(op("neg")(wildcard("x")))
        def rewrite(self, match, rw):
            return rw.value(match["x"])

    graph = apply_patterns(graph, [FoldDoubleNeg()])   # to a fixpoint, then dead-code elimination
"""

from mlc_lab.passes.rewrite.driver import MAX_SWEEPS, RewriteError, RewritePattern, Rewriter, apply_patterns
from mlc_lab.passes.rewrite.pattern import Match, MatchContext, Pattern, const, op, wildcard

__all__ = [
    "MAX_SWEEPS",
    "Match",
    "MatchContext",
    "Pattern",
    "RewriteError",
    "RewritePattern",
    "Rewriter",
    "apply_patterns",
    "const",
    "op",
    "wildcard",
]
