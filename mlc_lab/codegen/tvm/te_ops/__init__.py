"""One TE compute function per IR op (importing this package fills `TE_OPS`)."""

from mlc_lab.codegen.tvm.te_ops import cache, elementwise, index, nn, quant, tensor  # noqa: F401  (registration)
from mlc_lab.codegen.tvm.te_ops.registry import PAD_TAG, TE_OPS, UnsupportedOpError, te_op

__all__ = ["PAD_TAG", "TE_OPS", "UnsupportedOpError", "te_op"]
