"""TVM targets: this machine's CPU, and the forms a caller may name a target in.

Its own module so the contraction template (`tiling.py`) and the TVM build (`tvm/build.py`) both read it
without importing each other.
"""

from __future__ import annotations

import os

import tvm

TargetLike = str | dict | tvm.target.Target


def host_target(num_cores: int | None = None) -> tvm.target.Target:
    """This machine's CPU. Naming `mcpu` matters: without it LLVM emits generic x86-64 (no AVX)."""
    return tvm.target.Target(
        {
            "kind": "llvm",
            "mcpu": tvm.target.codegen.llvm_get_system_cpu(),
            "num-cores": num_cores or os.cpu_count() or 1,
        }
    )


def resolve_target(target: TargetLike) -> tvm.target.Target:
    if isinstance(target, tvm.target.Target):
        return target
    if target == "llvm":
        return host_target()
    if isinstance(target, dict):
        return tvm.target.Target(target)
    raise ValueError(f"target {target!r}: use 'llvm' (this CPU), a JSON-style dict or a tvm.target.Target")
