"""Graph-to-graph transformations. Every pass has `.apply(graph) -> Graph` and never edits its input."""

from mlc_lab.passes.base import Pass, PassError, PassManager, PassRecord, ir_diff
from mlc_lab.passes.dce import DeadCodeElimination, live_nodes
from mlc_lab.passes.decompose import Decompose
from mlc_lab.passes.fold import ConstantFolding, FoldConstants
from mlc_lab.passes.fuse_attention import FuseAttention
from mlc_lab.passes.fusion import ElementwiseFusionPass, FoldBatchNorm, OperatorFusionPass
from mlc_lab.passes.quantize import QuantizeWeights

__all__ = [
    "ConstantFolding",
    "DeadCodeElimination",
    "Decompose",
    "ElementwiseFusionPass",
    "FoldBatchNorm",
    "FoldConstants",
    "FuseAttention",
    "OperatorFusionPass",
    "Pass",
    "PassError",
    "PassManager",
    "PassRecord",
    "QuantizeWeights",
    "ir_diff",
    "live_nodes",
]
