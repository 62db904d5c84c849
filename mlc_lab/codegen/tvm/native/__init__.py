"""Kernels written directly in TensorIR, for ops whose fast form TE cannot express (an online softmax).

`lower_node` asks `native_kernel(op)` first: a builder here takes the node and returns its scheduled
PrimFunc (parameters: the node's inputs, then the output); the TE path and the schedule hook are
skipped for it, and the TVM build does not decompose an op that has one.
"""

from mlc_lab.codegen.tvm.native import attention  # noqa: F401  (registration)
from mlc_lab.codegen.tvm.native.registry import NATIVE_KERNELS, NativeKernel, native, native_kernel

__all__ = ["NATIVE_KERNELS", "NativeKernel", "native", "native_kernel"]
