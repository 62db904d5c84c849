"""Run a GPU-scheduled PrimFunc on the CPU: the same TensorIR with its thread loops made serial.

A GPU kernel's thread-bound loops (`T.thread_binding(16, thread="threadIdx.x")`) become ordinary loops
and everything else stays: the tiles, the shared/local buffers, the cooperative-load index arithmetic.
Each "thread" then runs in turn, so a cooperative load copies the whole shared tile on every thread's
turn (redundant, still the same values), and a load pattern that missed part of a tile, an epilogue
writing the wrong region or a wrong tile offset give wrong numbers here as they would on the GPU.
What this cannot show: races and missing `__syncthreads` (nothing runs concurrently), and speed.
"""

from __future__ import annotations

import re

import numpy as np
import tvm

from mlc_lab.codegen.tvm.lower import Kernel
from mlc_lab.ir.graph import Graph, Node

_THREAD_LOOP = re.compile(r'T\.thread_binding\((\d+), thread="[\w.]+"')


def serialize_threads(func: tvm.tirx.PrimFunc) -> tvm.tirx.PrimFunc:
    """`func` with every thread-bound loop serial (through TVMScript: this TVM exposes no TIR mutator)."""
    source = _THREAD_LOOP.sub(r"T.serial(\1", func.script())
    module = tvm.script.from_source(source)
    serial = module if isinstance(module, tvm.tirx.PrimFunc) else module["main"]
    return serial.without_attr("tirx.is_scheduled") if "tirx.is_scheduled" in (serial.attrs or {}) else serial


def cpu_build(func: tvm.tirx.PrimFunc) -> tvm.runtime.Module:
    """The serialized kernel built for this CPU (LLVM), callable with `tvm.runtime.tensor`s."""
    return tvm.tirx.build(tvm.IRModule({"main": serialize_threads(func)}), tvm.target.Target({"kind": "llvm"}))


def run_on_cpu(graph: Graph, kernels: dict[Node, Kernel], *inputs: np.ndarray) -> list[np.ndarray]:
    """Run a GPU-compiled graph's kernels on the CPU, serialized (module docstring), one node at a time.

    `kernels` is a GPUCompiledGraph's `.kernels`; the result compares with `graph(*inputs)` (the interpreter).
    """
    env: dict[Node, np.ndarray] = dict(zip(graph.inputs, inputs))
    env.update({c: c.value for c in graph.constants})
    built: dict[int, tvm.runtime.Module] = {}
    for node in graph.ops:
        kernel = kernels[node]
        if id(kernel) not in built:
            built[id(kernel)] = cpu_build(kernel.func)
        out = tvm.runtime.tensor(np.zeros(node.shape, node.dtype))
        args = [tvm.runtime.tensor(np.require(env[x], requirements="C")) for x in node.inputs]
        args += [tvm.runtime.tensor(c) for c in kernel.constants]
        built[id(kernel)](*args, out)
        env[node] = out.numpy()
    return [env[o] for o in graph.outputs]
