"""What a CPU can execute, as the schedule cares: architecture, ISA feature level, vector register width.

Why: a tuning record is keyed by the CPU LLVM names (`-mcpu=rocketlake`), and a log tuned on an Intel
machine matched nothing on an AMD one (`znver4`) although both run the same AVX-512 code. Two CPUs
with the same `IsaProfile` compile a schedule to the same instructions, so a record of one is a good
candidate on the other (`mlc_lab.tuning.sources` still re-validates it, and times it against the
default schedule). The profile is read from LLVM's feature list for the CPU (never from its name):

- x86-64: the psABI levels `x86-64-v4` (AVX-512 F/BW/CD/DQ/VL), `-v3` (AVX2, FMA, BMI1/2, ...),
  `-v2` (SSE4.2, POPCNT, ...), `x86-64`; vector width 512 (AVX-512F), 256 (AVX) or 128 bits;
- aarch64: `sve2`, `sve` or `neon` (128-bit NEON registers; SVE's width is a property of the chip).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlc_lab.errors import MlcLabError

#: The feature sets of the x86-64 psABI micro-architecture levels, highest first (LLVM's feature names).
X86_LEVELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("x86-64-v4", frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
    ("x86-64-v3", frozenset({"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe"})),
    ("x86-64-v2", frozenset({"cx16", "popcnt", "sse4.1", "sse4.2", "ssse3"})),
)
#: Triples tried to read the features of a CPU named only by its `mcpu` (a record's target has no triple).
TRIPLES = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}


@dataclass(frozen=True)
class IsaProfile:
    """The part of a CPU a schedule's code depends on; equal profiles run the same instructions."""

    arch: str  #: "x86_64", "aarch64"
    level: str  #: "x86-64-v4", "x86-64-v3", ..., "neon", "sve", "sve2"
    vector_bits: int  #: widest vector register the level guarantees

    def __str__(self) -> str:
        return f"{self.arch} {self.level} ({self.vector_bits}-bit vectors)"


class UnknownCPU(MlcLabError, ValueError):
    """LLVM does not know the CPU named in a record's target (on any architecture it was asked about)."""


def system_cpu() -> str:
    """LLVM's name for this CPU (`znver4`, `rocketlake`, `cortex-a72`); tests replace it to play another machine."""
    import tvm

    return str(tvm.target.codegen.llvm_get_system_cpu())


def profile_from_features(arch: str, features: set[str] | frozenset[str]) -> IsaProfile:
    """The profile of a CPU of `arch` with these LLVM features."""
    if arch == "x86_64":
        level = next((name for name, need in X86_LEVELS if need <= features), "x86-64")
        bits = 512 if "avx512f" in features else 256 if "avx" in features else 128
        return IsaProfile(arch, level, bits)
    if arch == "aarch64":
        level = "sve2" if "sve2" in features else "sve" if "sve" in features else "neon"
        return IsaProfile(arch, level, 128)
    return IsaProfile(arch, "generic", 0)


@functools.lru_cache(maxsize=64)
def cpu_profile(mcpu: str) -> IsaProfile:
    """The profile of the CPU LLVM calls `mcpu`, read from its feature list; `UnknownCPU` if no triple knows it."""
    import tvm

    codegen = tvm.target.codegen
    if mcpu in ("", "generic"):
        raise UnknownCPU(f"CPU {mcpu or '(none)'!r} names no feature set")
    host = str(codegen.llvm_get_system_triple())
    host_arch = host.split("-")[0]
    order = [host_arch] + [a for a in TRIPLES if a != host_arch]
    for arch in order:
        triple = host if arch == host_arch else TRIPLES.get(arch)
        if triple and codegen.llvm_is_valid_cpu(mcpu, triple):
            target = tvm.target.Target({"kind": "llvm", "mcpu": mcpu, "mtriple": triple})
            return profile_from_features(arch, set(codegen.llvm_get_cpu_features(target)))
    raise UnknownCPU(f"LLVM knows no CPU {mcpu!r} for {', '.join(order)}")


def this_profile() -> IsaProfile:
    """This machine's profile (from `system_cpu()`, so a test that replaces it changes this too)."""
    return cpu_profile(system_cpu())


def similar(mcpu_a: str, mcpu_b: str) -> bool:
    """Whether two CPUs have the same profile (False when LLVM knows either not)."""
    try:
        return cpu_profile(mcpu_a) == cpu_profile(mcpu_b)
    except UnknownCPU:
        return False
