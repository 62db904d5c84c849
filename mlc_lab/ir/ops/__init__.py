"""The operator set. Importing this package registers every op."""

from mlc_lab.ir.ops import attention, compare, core, elementwise, index, linalg, nn, quant, reduce, shape  # noqa: F401
from mlc_lab.ir.ops.registry import (
    OPS,
    REQUIRED,
    Cost,
    OpDef,
    OpError,
    OpKind,
    Trait,
    channel_axis,
    get_op,
    has_trait,
    infer_type,
    is_contraction_kernel,
    is_source,
    node_cost,
    ops_with,
    register,
)

__all__ = [
    "OPS",
    "REQUIRED",
    "Cost",
    "OpDef",
    "OpError",
    "OpKind",
    "Trait",
    "channel_axis",
    "get_op",
    "has_trait",
    "infer_type",
    "is_contraction_kernel",
    "is_source",
    "node_cost",
    "ops_with",
    "register",
]
