"""Tuning for a simulated accelerator: the same tuner, a different space and a cost in cycles.

A GEMM on a rows x cols systolic array is tiled (tile_m, tile_n, tile_k: what one pass of the array
holds in its local buffers) and run in a dataflow (output-, weight- or input-stationary). The cost
is pluggable, any function config -> TrialResult:

- `analytical_cycles`: a closed-form per-fold model with a refill cost for tiles that overflow the
  buffers: a stand-in that needs nothing else (the tests use it);
- `simulated_cycles`: the systolic backend's own report (`mlc_lab.backends.custom.systolic`), one
  simulated GEMM per tile, times the number of tiles.

    space = systolic_space(256, 256, 256, rows=8, cols=8)
    cost = SystolicCost(256, 256, 256, rows=8, cols=8, model=simulated_cycles)
    result = tune_space(space, cost, 64, key="gemm256@systolic8x8")
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mlc_lab.tuning.measure import TrialResult
from mlc_lab.tuning.space import Config, SearchSpace

DATAFLOWS = ("os", "ws", "is")


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def systolic_space(m: int, n: int, k: int, rows: int, cols: int) -> SearchSpace:
    """Tile sizes (divisors of each dimension) and the dataflow."""
    return SearchSpace(
        {
            "tile_m": _divisors(m),
            "tile_n": _divisors(n),
            "tile_k": _divisors(k),
            "dataflow": list(DATAFLOWS),
        }
    )


def analytical_cycles(
    config: Config, m: int, n: int, k: int, rows: int, cols: int, buffer_words: int = 32 * 1024
) -> float:
    """Cycles of the tiled GEMM: array folds x (fill + stream + drain), plus reloading spilled tiles.

    Per fold the array is filled (rows + cols), streams the non-stationary dimension and drains; the
    stationary operand picks which GEMM dimensions map onto the array. Tiles whose three operands do
    not fit `buffer_words` pay a reload of the overflow from DRAM at one word per cycle.
    """
    tm, tn, tk = config["tile_m"], config["tile_n"], config["tile_k"]
    # which two dims map to the array's rows/cols, and which streams through it
    mapped = {"os": (tm, tn, tk), "ws": (tk, tn, tm), "is": (tk, tm, tn)}[config["dataflow"]]
    spatial_r, spatial_c, streamed = mapped
    folds = math.ceil(spatial_r / rows) * math.ceil(spatial_c / cols)
    per_tile = folds * (rows + cols + streamed)
    tiles = (m // tm) * (n // tn) * (k // tk)
    footprint = tm * tk + tk * tn + tm * tn
    spill = max(0, footprint - buffer_words)
    return float(tiles * (per_tile + spill + 16))  # +16: fixed per-tile control overhead


def simulated_cycles(config: Config, m: int, n: int, k: int, rows: int, cols: int, **hardware) -> float:
    """Cycles reported by the systolic-array simulator for the tiled GEMM (all tiles run one after another)."""
    from mlc_lab.backends.custom.systolic import SystolicArrayBackend

    backend = SystolicArrayBackend(rows=rows, cols=cols, dataflow=config["dataflow"], **hardware)
    tm, tn, tk = config["tile_m"], config["tile_n"], config["tile_k"]
    report = backend.simulate_gemm(tm, tn, tk)
    return float(report.cycles * (m // tm) * (n // tn) * (k // tk))


@dataclass
class SystolicCost:
    """The pluggable cost: config -> TrialResult with cycles (swap `model` for the simulator's)."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    model: Callable[..., float] = analytical_cycles

    def __call__(self, config: Config) -> TrialResult:
        try:
            return TrialResult(config, self.model(config, self.m, self.n, self.k, self.rows, self.cols))
        except Exception as e:  # a simulator refusing a config is a failed trial, kept with its reason
            return TrialResult(config, error=f"simulate: {type(e).__name__}: {e}")
