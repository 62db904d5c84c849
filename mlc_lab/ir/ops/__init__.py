"""The operator set. Importing this package registers every op."""

from mlc_lab.ir.ops import core, elementwise, linalg, nn, reduce, shape  # noqa: F401  (registration)
from mlc_lab.ir.ops.registry import OPS, REQUIRED, OpDef, OpError, OpKind, get_op, infer_type, register

__all__ = ["OPS", "REQUIRED", "OpDef", "OpError", "OpKind", "get_op", "infer_type", "register"]
