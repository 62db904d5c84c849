"""What every custom accelerator backend shares: config checking, the compiled program, the report.

All three backends have the same shape:

    program = backend.compile(graph)              # a mapping of the graph onto the hardware
    outputs, report = backend.execute(program, inputs)

`outputs` are real numbers (equal to `mlc_lab.interpret`); `report` is what the hardware model says
the run cost: cycles, utilization, on-chip and off-chip traffic, time at the configured clock, and
one entry per layer.
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from mlc_lab.errors import MlcLabError

if TYPE_CHECKING:
    import matplotlib.figure

    from mlc_lab.ir import Graph


class ConfigError(MlcLabError, ValueError):
    """A backend parameter is invalid; the message starts with the parameter's name."""


class MappingError(MlcLabError, ValueError):
    """The graph cannot be mapped onto this hardware (a layer does not fit); the message says what to change."""


# -- stated limits: past them a parameter is a typo, not an experiment (and the model's arrays would not fit)
MAX_ARRAY_SIDE = 4096  # systolic array rows or columns (TPU v1: 256)
MAX_CORES = 10_000_000  # wafer cores: 11x a WSE-3's 900,000 (10^7 cores take ~13 s to compile)
MAX_GRID_SIDE = 256  # dataflow PE grid rows or columns: mapping 256x256 takes ~10-15 s, 1024x1024 minutes
MAX_LAYER_DIM = 2**31 - 1  # one dimension of a single simulated GEMM or convolution
MAX_PER_UNIT = 2**20  # MACs per core/PE per cycle, vector lanes, tracks per link, word bytes, batch
MAX_CYCLES = 10**9  # cycle budgets (cycle-accurate mode: about 20 us of NumPy per cycle)
MAX_QUANTITY = 1e12  # any other number: clocks, bandwidths, memory sizes in KB (10^12 KB = 1 EB)
MIN_QUANTITY = 1e-6  # ... and the smallest (a bandwidth near 0 turns cycle counts into infinity)


# -- parameter checks: each names the parameter it rejects --------------------------------------------
def _integral(value: Any) -> bool:
    """An int (Python or NumPy) or an integral finite float; never a bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False
    return isinstance(value, numbers.Integral) or (math.isfinite(value) and float(value).is_integer())


def positive_int(name: str, value: Any, limit: int | None = None) -> int:
    """`value` as an int in [1, limit]; a ConfigError naming `name` otherwise."""
    bound = f" at most {limit:,}" if limit is not None else ""
    if not _integral(value) or value <= 0 or (limit is not None and value > limit):
        raise ConfigError(f"{name} must be a positive integer{bound}, got {value!r}")
    return int(value)


def non_negative_int(name: str, value: Any, limit: int | None = None) -> int:
    bound = f" at most {limit:,}" if limit is not None else ""
    if not _integral(value) or value < 0 or (limit is not None and value > limit):
        raise ConfigError(f"{name} must be a non-negative integer{bound}, got {value!r}")
    return int(value)


def positive_float(name: str, value: Any, limit: float = MAX_QUANTITY, minimum: float = MIN_QUANTITY) -> float:
    """`value` as a float in [minimum, limit] (finite, not NaN); a ConfigError naming `name` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not minimum <= value <= limit:
        raise ConfigError(f"{name} must be a positive number in [{minimum:g}, {limit:g}], got {value!r}")
    return float(value)


def fraction(name: str, value: Any) -> float:
    value = positive_float(name, value)
    if value > 1:
        raise ConfigError(f"{name} must be in (0, 1], got {value!r}")
    return value


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise ConfigError(f"{name}: unknown value {value!r}; choose one of {', '.join(map(repr, options))}")
    return value


def parse_grid(name: str, value: Any, limit: int | None = None) -> tuple[int, int]:
    """(rows, cols) from a pair or a string like '16x16', each in [1, limit]."""
    if isinstance(value, str):
        parts = value.lower().replace("*", "x").split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"{name} must look like RxC (e.g. 16x16), got {value!r}") from None
    try:
        rows, cols = value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (rows, cols) pair, got {value!r}") from None
    return positive_int(f"{name} rows", rows, limit), positive_int(f"{name} cols", cols, limit)


# -- results -------------------------------------------------------------------------------------------
@dataclass
class LayerReport:
    """One mapped layer. Backends add their own fields in subclasses."""

    name: str
    op: str
    macs: int
    cycles: int
    utilization: float

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class Report:
    """The cost of one `execute`. Fields common to every backend; subclasses add their own."""

    backend: str
    clock_hz: float
    cycles: int  # end-to-end cycles of one run
    compute_cycles: int  # cycles the compute units were scheduled for (a pipeline: its interval)
    utilization: float  # useful MACs / MAC capacity over `compute_cycles` (each report's docstring is exact)
    onchip_bytes: int  # traffic between on-chip memories and compute
    offchip_bytes: int  # traffic to and from off-chip memory (DRAM, host, weight streaming)
    macs: int
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def time_s(self) -> float:
        """Estimated wall time of one run at the configured clock."""
        return self.cycles / self.clock_hz

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        out["time_s"] = self.time_s
        out["layers"] = [layer.to_dict() for layer in self.layers]
        return _jsonable(out)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def summary(self) -> str:
        lines = [
            f"{self.backend}: {self.cycles:,} cycles = {self.time_s * 1e6:,.2f} us at {self.clock_hz / 1e6:,.0f} MHz",
            f"  MACs {self.macs:,}   utilization {self.utilization:.1%}",
            f"  on-chip traffic {self.onchip_bytes:,} B   off-chip traffic {self.offchip_bytes:,} B",
        ]
        return "\n".join(lines)

    def table(self, columns: tuple[str, ...] = ("op", "macs", "cycles", "utilization")) -> str:
        """One line per layer with the chosen fields."""
        width = max([len(layer.name) for layer in self.layers] + [5])
        rows = [f"{'layer':<{width}} " + " ".join(f"{c:>14}" for c in columns)]
        for layer in self.layers:
            cells = [_cell(getattr(layer, c, "")) for c in columns]
            rows.append(f"{layer.name:<{width}} " + " ".join(f"{c:>14}" for c in cells))
        return "\n".join(rows)

    def __str__(self) -> str:
        return self.summary() + "\n" + self.table()


@dataclass
class CompiledProgram:
    """A graph mapped onto one backend's hardware: printable (`str`) and drawable (`draw`)."""

    backend: str
    graph: Graph
    config: dict[str, Any]
    layers: list[Any]

    def summary(self) -> str:
        return f"{self.backend} program for graph {self.graph.name!r}: {len(self.layers)} mapped layers"

    def __str__(self) -> str:
        return self.summary() + "\n" + "\n".join(f"  {layer}" for layer in self.layers)

    def draw(self, **kwargs: Any) -> matplotlib.figure.Figure:  # pragma: no cover - overridden
        raise NotImplementedError


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _jsonable(value: Any) -> Any:
    """Plain Python types only (NumPy scalars and tuples converted), so `json.dumps` works."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
