"""The compute roof of the roofline, derived from the CPU's figures rather than measured.

peak FLOP/s = cores x clock x FMA units per core x fp32 lanes per vector x 2 (an FMA is a multiply and
an add). Lanes come from the target's features (`mlc_lab.codegen.tiling.target_isa`), the clock from
/proc/cpuinfo (on a VM its nominal figure, not a turbo clock), and the FMA units per core are an
assumption stated next to the result: most x86 server cores since Haswell issue two vector FMAs per
cycle, but at their own width (AMD Zen 4 runs a 512-bit FMA as two 256-bit halves, so its real
figure is half of what 2 x 16 lanes suggests).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Vector FMA instructions issued per cycle and core (an assumption: stated with every result).
FMA_UNITS = 2


@dataclass(frozen=True)
class ComputeRoof:
    """A derived peak and the figures it came from."""

    cores: int
    ghz: float
    fma_units: int
    lanes: int
    clock_source: str

    @property
    def gflops(self) -> float:
        return self.cores * self.ghz * self.fma_units * self.lanes * 2

    def __str__(self) -> str:
        return (
            f"{self.cores} cores x {self.ghz:.2f} GHz ({self.clock_source}) x {self.fma_units} FMA units (assumed) "
            f"x {self.lanes} fp32 lanes x 2 FLOP = {self.gflops:.0f} GFLOP/s"
        )


def cpu_clock_ghz(cpuinfo: str | None = None) -> tuple[float, str]:
    """The clock in GHz and where it was read; (0.0, "unknown") when nothing says."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    found = re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, flags=re.M)
    if found:
        return max(float(f) for f in found) / 1000, "/proc/cpuinfo"
    return 0.0, "unknown"


def derived_compute_roof(threads: int, lanes: int | None = None, fma_units: int = FMA_UNITS) -> ComputeRoof:
    """The compute roof for `threads` cores of this CPU (lanes from its vector level unless given)."""
    if threads < 1:
        raise ValueError(f"derived_compute_roof: threads must be >= 1, not {threads}")
    if lanes is None:
        from mlc_lab.codegen.tiling import target_isa

        lanes = target_isa().lanes
    ghz, source = cpu_clock_ghz()
    return ComputeRoof(threads, ghz, fma_units, lanes, source)
