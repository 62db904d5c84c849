"""The per-fold cycle model of a systolic array running one GEMM, in closed form.

A GEMM `A (M x K) @ B (K x N)` is too big for an R x C array, so it is cut into *folds*: tiles that
fit the array, run one after another. The dataflow decides which two GEMM dimensions are laid out
spatially over the rows and columns of the array and which one streams through it in time:

    dataflow             rows (Sr)   cols (Sc)   streamed (T)   stays in the PEs
    output stationary    M           N           K              the partial sums
    weight stationary    K           N           M              the weights
    input stationary     K           M           N              the inputs

Folds: ceil(Sr / R) * ceil(Sc / C). Each fold costs a fixed, data-independent schedule:

    OS:       T + R + C - 2     (skewed operands enter; the last MAC lands in PE (R-1, C-1))
    WS, IS:   2R + C + T - 2    (R cycles to load the stationary tile, then the skewed stream)

These are SCALE-Sim 3.0's schedules (its `systolic_compute_{os,ws,is}.py` demand matrices have exactly
this many rows per fold; `tests/test_sim_systolic.py` checks every stored SCALE-Sim report). The
array always runs the full R x C skew, even when a fold uses fewer rows or columns: the controller's
schedule does not know which PEs hold padding.

SCALE-Sim reports the index of the last busy cycle (its cycles count from 0), one less than the
number of cycles the folds take; `compute_cycles` follows that convention so the numbers compare
one to one, and `fold_cycles` holds the plain per-fold durations.

Everything is NumPy arithmetic on the fold counts: microseconds per layer, whatever its size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATAFLOWS: dict[str, str] = {
    "os": "output stationary",
    "ws": "weight stationary",
    "is": "input stationary",
}

#: SCALE-Sim counts cycles from 0 and reports the last index: cycles taken = compute_cycles + 1.
SCALESIM_LAST_INDEX_OFFSET = 1


def check_dataflow(dataflow: str) -> str:
    """The canonical short name ('os', 'ws' or 'is'), or a ValueError naming the choices."""
    key = str(dataflow).lower()
    aliases = {v.replace(" ", "_"): k for k, v in DATAFLOWS.items()}
    key = aliases.get(key.replace("-", "_").replace(" ", "_"), key)
    if key not in DATAFLOWS:
        raise ValueError(f"dataflow: unknown dataflow {dataflow!r}; choose one of {', '.join(DATAFLOWS)}")
    return key


def spatial_dims(m: int, n: int, k: int, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T): the GEMM dimensions on the array's rows, on its columns, and in time."""
    return {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[check_dataflow(dataflow)]


def cycles_per_fold(rows: int, cols: int, t: int, dataflow: str) -> int:
    """Cycles one fold takes (the same for every fold of a layer)."""
    if check_dataflow(dataflow) == "os":
        return t + rows + cols - 2
    return 2 * rows + cols + t - 2


@dataclass(frozen=True)
class FoldStats:
    """What the fold model says about one GEMM on one array."""

    m: int
    n: int
    k: int
    rows: int
    cols: int
    dataflow: str
    row_folds: int
    col_folds: int
    fold_cycles: int  # cycles of each fold
    compute_cycles: int  # SCALE-Sim's "Total Cycles": folds * fold_cycles - 1
    mapping_efficiency: float  # mean over folds of (PEs holding real work) / (R * C)
    utilization: float  # MACs / (compute_cycles * R * C), SCALE-Sim's "Overall Util" (max(., 1) cycles)

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k

    @property
    def cycles(self) -> int:
        """Cycles the folds take, counted from 1 (what a clock would measure)."""
        return self.folds * self.fold_cycles


def gemm_folds(m: int, n: int, k: int, rows: int, cols: int, dataflow: str) -> FoldStats:
    """The fold model for `(m x k) @ (k x n)` on a `rows x cols` array."""
    for name, value in (("M", m), ("N", n), ("K", k), ("rows", rows), ("cols", cols)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    df = check_dataflow(dataflow)
    sr, sc, t = spatial_dims(m, n, k, df)
    row_folds, col_folds = -(-sr // rows), -(-sc // cols)
    per_fold = cycles_per_fold(rows, cols, t, df)
    total = row_folds * col_folds * per_fold - SCALESIM_LAST_INDEX_OFFSET
    # Mean over folds of rows_used * cols_used / (R C): the mean factorises over row and column folds.
    mapping = (sr / row_folds) * (sc / col_folds) / (rows * cols)
    utilization = m * n * k / (max(total, 1) * rows * cols)
    return FoldStats(m, n, k, rows, cols, df, row_folds, col_folds, per_fold, total, mapping, utilization)


def gemm_folds_batch(
    m: np.ndarray, n: np.ndarray, k: np.ndarray, rows: int, cols: int, dataflow: str
) -> dict[str, np.ndarray]:
    """The same model for many GEMMs at once (one NumPy expression per quantity): a whole network's layers."""
    m, n, k = (np.asarray(v, dtype=np.int64) for v in (m, n, k))
    if (m <= 0).any() or (n <= 0).any() or (k <= 0).any():
        raise ValueError("every GEMM dimension must be positive")
    df = check_dataflow(dataflow)
    sr, sc, t = spatial_dims(m, n, k, df)
    row_folds, col_folds = -(-sr // rows), -(-sc // cols)
    per_fold = cycles_per_fold(rows, cols, t, df)
    total = row_folds * col_folds * per_fold - SCALESIM_LAST_INDEX_OFFSET
    return {
        "row_folds": row_folds,
        "col_folds": col_folds,
        "fold_cycles": per_fold,
        "compute_cycles": total,
        "mapping_efficiency": (sr / row_folds) * (sc / col_folds) / (rows * cols),
        "utilization": m * n * k / (np.maximum(total, 1) * rows * cols),  # 1x1x1 on 1x1 OS: 0 cycles
    }


def conv_as_gemm(h: int, w: int, kh: int, kw: int, c: int, f: int, stride: int = 1) -> tuple[int, int, int]:
    """(M, N, K) of a valid (unpadded) convolution lowered by im2col, as SCALE-Sim lowers it.

    M = output pixels, N = filters, K = kh * kw * c. Output size: ceil((H - KH + S) / S).
    """
    for name, value in (("H", h), ("W", w), ("KH", kh), ("KW", kw), ("C", c), ("F", f), ("STRIDE", stride)):
        if int(value) != value or value <= 0:
            raise ValueError(f"conv {name} must be a positive integer, got {value!r}")
    if kh > h or kw > w:
        raise ValueError(f"conv filter {kh}x{kw} is larger than the input {h}x{w}")
    oh = -(-(h - kh + stride) // stride)
    ow = -(-(w - kw + stride) // stride)
    return oh * ow, f, kh * kw * c


def utilization_sweep(
    gemms: list[tuple[int, int, int]],
    sizes: list[int] | tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256),
    dataflows: tuple[str, ...] = ("os", "ws", "is"),
) -> dict[str, np.ndarray]:
    """Utilization of square arrays of each size running all `gemms` one after another, per dataflow.

    Utilization = all MACs / (all compute cycles * R * C): the chapter's "bigger arrays idle more" curve.
    """
    mnk = np.asarray(gemms, dtype=np.int64).reshape(-1, 3)
    macs = int((mnk[:, 0] * mnk[:, 1] * mnk[:, 2]).sum())
    out = {}
    for df in dataflows:
        util = []
        for size in sizes:
            cycles = gemm_folds_batch(mnk[:, 0], mnk[:, 1], mnk[:, 2], size, size, df)["compute_cycles"].sum()
            util.append(macs / (max(int(cycles), 1) * size * size))
        out[check_dataflow(df)] = np.array(util)
    return out


SCALESIM_REFERENCE = Path(__file__).parent / "data" / "scalesim_reference.json"


def load_scalesim_reference() -> dict:
    """SCALE-Sim 3.0's reports for the stored layers (generated by tools/scalesim_reference.py; SCALE-Sim
    itself needs numpy < 2.4, so it runs in its own environment and we keep its answers)."""
    return json.loads(SCALESIM_REFERENCE.read_text())
