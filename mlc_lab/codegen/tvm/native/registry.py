"""The table from IR op names to hand-written TensorIR kernel builders (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable

import tvm

from mlc_lab.ir.graph import Node

#: builder(node) -> the node's scheduled PrimFunc (parameters: the node's inputs, then the output)
NativeKernel = Callable[[Node], tvm.tirx.PrimFunc]

#: IR op name -> builder
NATIVE_KERNELS: dict[str, NativeKernel] = {}


def native(op: str) -> Callable[[NativeKernel], NativeKernel]:
    """Register a kernel builder for `op`."""

    def register(fn: NativeKernel) -> NativeKernel:
        NATIVE_KERNELS[op] = fn
        return fn

    return register


def native_kernel(op: str) -> NativeKernel | None:
    """The hand-written TensorIR builder for `op`, if there is one."""
    return NATIVE_KERNELS.get(op)
