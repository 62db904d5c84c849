"""Where one kernel's schedule came from: a small record the schedule hooks report.

Its own module because both hooks report it, the tuning log's (`apply.DatabaseSchedule`) and the
default chain's (`sources.ScheduleSources`), and `sources` builds on `apply`: neither imports the other back.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KernelSource"]


@dataclass(frozen=True)
class KernelSource:
    """Where one kernel's schedule came from."""

    kernel: str  #: the (first) node the kernel computes
    kind: str  #: one of `mlc_lab.tuning.sources.SOURCE_KINDS`
    origin: str = ""  #: the log and the target the record came from
    detail: str = ""  #: why the default was used, or what the probe measured

    def __str__(self) -> str:
        extra = "; ".join(filter(None, [self.origin, self.detail]))
        return f"{self.kernel}: {self.kind}" + (f" ({extra})" if extra else "")
