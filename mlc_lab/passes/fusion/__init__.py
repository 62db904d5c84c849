"""Fusion: deciding which ops run as one kernel, and rewriting them into `fused` nodes."""

from mlc_lab.passes.fusion.elementwise_fusion import ElementwiseFusionPass
from mlc_lab.passes.fusion.fold_batch_norm import FoldBatchNorm
from mlc_lab.passes.fusion.group import FusionError, outline_groups
from mlc_lab.passes.fusion.operator_fusion import OperatorFusionPass
from mlc_lab.passes.fusion.patterns import PATTERNS, Pattern, Step, chain, find_matches, match_chain

__all__ = [
    "PATTERNS",
    "ElementwiseFusionPass",
    "FoldBatchNorm",
    "FusionError",
    "OperatorFusionPass",
    "Pattern",
    "Step",
    "chain",
    "find_matches",
    "match_chain",
    "outline_groups",
]
