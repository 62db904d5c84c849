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

import tvm

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
