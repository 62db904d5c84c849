"""A cycle-accurate systolic array: real numbers move through the PEs' registers, one cycle at a time.

This is the slow, explicit twin of the fold model in `mlc_lab.sim.systolic`. Each cycle every PE
takes the operand its left neighbour held (and, depending on the dataflow, the one above it or the
partial sum above it), multiplies, and accumulates. Nothing about timing is written down here: the
cycle counts come out of running the schedule, and the tests check they equal the closed-form model,
while the outputs equal `A @ B`. One cycle is one NumPy step over the R x C register arrays, so it is
meant for small arrays and layers (the chapter's pictures), not for networks.

Each operand element carries a *token* (its index along the streamed dimension, -1 for an empty
register) next to its value, so we can tell a real multiply-accumulate from a bubble and draw the
wavefront.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlc_lab.ir.memory import check_fits
from mlc_lab.sim.systolic import check_dataflow, gemm_folds

#: A simulation longer than this many cycles is refused: use the fold model instead.
DEFAULT_MAX_CYCLES = 200_000


@dataclass
class PESnapshot:
    """The array's state after one cycle (for drawing the wavefront)."""

    cycle: int
    fold: int
    phase: str  # "load" (stationary operand shifting in) or "compute"
    active: np.ndarray  # bool R x C: PEs that did a real multiply-accumulate this cycle
    token: np.ndarray  # int R x C: index of the streamed element each PE holds (-1: none)


@dataclass
class PESimResult:
    output: np.ndarray  # M x N
    dataflow: str
    rows: int
    cols: int
    fold_cycles: list[int]  # cycles each fold took, in execution order
    busy: np.ndarray  # int R x C: real multiply-accumulates per PE
    mapping_per_fold: list[float]  # fraction of PEs that did real work in each fold
    snapshots: list[PESnapshot] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return int(sum(self.fold_cycles))

    @property
    def mapping_efficiency(self) -> float:
        return float(np.mean(self.mapping_per_fold))

    @property
    def macs(self) -> int:
        return int(self.busy.sum())


class _Recorder:
    """Counts each PE's real multiply-accumulates as they happen, and keeps the first `limit` snapshots."""

    def __init__(self, limit: int, rows: int, cols: int) -> None:
        self.limit, self.snapshots, self.cycle = limit, [], 0
        self.busy = np.zeros((rows, cols), np.int64)

    def tick(self, fold: int, phase: str, active: np.ndarray, token: np.ndarray) -> None:
        self.busy += active
        if len(self.snapshots) < self.limit:
            self.snapshots.append(PESnapshot(self.cycle, fold, phase, active.copy(), token.copy()))
        self.cycle += 1


def _os_fold(a: np.ndarray, b: np.ndarray, real: np.ndarray, fold: int, rec: _Recorder) -> tuple[np.ndarray, int]:
    """Output stationary: a (R x T) enters from the left, b (T x C) from the top, both skewed by one per row/col.

    Returns the R x C accumulators and the cycles taken. `real` marks PEs mapped to real outputs.
    """
    rows, t_len = a.shape
    cols = b.shape[1]
    a_val = np.zeros((rows, cols), a.dtype)
    b_val = np.zeros((rows, cols), a.dtype)
    a_tok = np.full((rows, cols), -1)
    b_tok = np.full((rows, cols), -1)
    acc = np.zeros((rows, cols), a.dtype)
    r_idx, c_idx = np.arange(rows), np.arange(cols)
    cycle = 0
    while True:
        # Shift: values move one PE right (a) and one PE down (b); new skewed elements enter at the edges.
        a_val[:, 1:], a_tok[:, 1:] = a_val[:, :-1].copy(), a_tok[:, :-1].copy()
        b_val[1:, :], b_tok[1:, :] = b_val[:-1, :].copy(), b_tok[:-1, :].copy()
        ka, kb = cycle - r_idx, cycle - c_idx
        ina, inb = (ka >= 0) & (ka < t_len), (kb >= 0) & (kb < t_len)
        a_tok[:, 0] = np.where(ina, ka, -1)
        a_val[:, 0] = np.where(ina, a[r_idx, np.clip(ka, 0, t_len - 1)], 0)
        b_tok[0, :] = np.where(inb, kb, -1)
        b_val[0, :] = np.where(inb, b[np.clip(kb, 0, t_len - 1), c_idx], 0)
        meet = (a_tok >= 0) & (a_tok == b_tok)
        assert ((a_tok >= 0) == meet).all(), "operands out of step"  # the skew makes tokens meet exactly
        acc += np.where(meet, a_val * b_val, 0)
        rec.tick(fold, "compute", meet & real, a_tok)
        cycle += 1
        if a_tok[-1, -1] == t_len - 1:  # the last element reached the far corner: the fold is done
            return acc, cycle


def _stationary_fold(
    stat: np.ndarray, stream: np.ndarray, real: np.ndarray, fold: int, rec: _Recorder
) -> tuple[np.ndarray, int]:
    """Weight/input stationary: `stat` (R x C) shifts in from the top for R cycles and stays; then `stream`
    (T x R, element t of row i) enters from the left skewed by one per row, and partial sums flow down.

    Returns the T x C column sums leaving the bottom edge and the cycles taken.
    """
    rows, cols = stat.shape
    t_len = stream.shape[0]
    held = np.zeros_like(stat)
    for step in range(rows):  # load: the bottom row goes in first and is pushed down
        held[1:], held[0] = held[:-1].copy(), stat[rows - 1 - step]
        rec.tick(fold, "load", np.zeros((rows, cols), bool), np.full((rows, cols), -1))
    assert np.array_equal(held, stat)
    a_val = np.zeros((rows, cols), stat.dtype)
    a_tok = np.full((rows, cols), -1)
    psum = np.zeros((rows, cols), stat.dtype)
    out = np.zeros((t_len, cols), stat.dtype)
    r_idx = np.arange(rows)
    cycle = rows
    while True:
        a_val[:, 1:], a_tok[:, 1:] = a_val[:, :-1].copy(), a_tok[:, :-1].copy()
        k = (cycle - rows) - r_idx
        inside = (k >= 0) & (k < t_len)
        a_tok[:, 0] = np.where(inside, k, -1)
        a_val[:, 0] = np.where(inside, stream[np.clip(k, 0, t_len - 1), r_idx], 0)
        valid = a_tok >= 0
        above = np.zeros_like(psum)
        above[1:] = psum[:-1]  # partial sums move one PE down per cycle, in step with the skewed inputs
        psum = np.where(valid, above + a_val * held, 0)
        done = valid[-1]  # bottom row: finished column sums leave the array
        out[a_tok[-1, done], np.nonzero(done)[0]] += psum[-1, done]
        rec.tick(fold, "compute", valid & real, a_tok)
        cycle += 1
        if a_tok[-1, -1] == t_len - 1:
            return out, cycle


def pe_state_bytes(m: int, n: int, k: int, rows: int, cols: int, itemsize: int, snapshots: int) -> int:
    """Bytes `simulate_gemm_pe` holds at its peak: about a dozen R x C register arrays (values, tokens,
    sums and their per-cycle temporaries, 8 B each), each snapshot's mask and tokens (9 B per PE), the
    zero-padded fold tiles and the output."""
    registers = rows * cols * (12 * 8 + 9 * snapshots)
    tiles = (rows + cols) * max(m, n, k) * itemsize + m * n * itemsize
    return registers + tiles


def simulate_gemm_pe(
    a: np.ndarray,
    b: np.ndarray,
    rows: int,
    cols: int,
    dataflow: str = "os",
    record: int = 0,
    max_cycles: int = DEFAULT_MAX_CYCLES,
) -> PESimResult:
    """Run `a @ b` through a `rows x cols` systolic array, cycle by cycle; keep `record` snapshots.

    Folds run in SCALE-Sim's order (column folds outer, row folds inner) and never overlap.
    """
    df = check_dataflow(dataflow)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"need a (M x K) and b (K x N), got {a.shape} and {b.shape}")
    for name, value in (("rows", rows), ("cols", cols), ("max_cycles", max_cycles)):
        if int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    m, k = a.shape
    n = b.shape[1]
    expected = gemm_folds(m, n, k, rows, cols, df)
    if expected.cycles > max_cycles:
        raise ValueError(
            f"max_cycles: this GEMM ({m}x{k} @ {k}x{n}) needs {expected.cycles:,} cycles on {rows}x{cols}, "
            f"more than max_cycles={max_cycles:,}; use the fold model (mode='fast') for layers this big"
        )
    if isinstance(record, bool) or not isinstance(record, (int, np.integer)) or record < 0:
        raise ValueError(f"record must be a non-negative integer (snapshots to keep), got {record!r}")
    dtype = np.result_type(a, b)
    check_fits(
        pe_state_bytes(m, n, k, rows, cols, dtype.itemsize, min(record, expected.cycles)),
        f"the cycle-accurate {rows}x{cols} array for a {m}x{k} @ {k}x{n} GEMM (record={record:,} snapshots)",
    )
    out = np.zeros((m, n), dtype)
    fold_cycles: list[int] = []
    mapping: list[float] = []
    rec = _Recorder(record, rows, cols)
    sr, sc = {"os": (m, n), "ws": (k, n), "is": (k, m)}[df]
    fold = 0
    for c0 in range(0, sc, cols):
        for r0 in range(0, sr, rows):
            ru, cu = min(rows, sr - r0), min(cols, sc - c0)
            real = np.zeros((rows, cols), bool)
            real[:ru, :cu] = True
            busy_before = rec.busy.copy()
            if df == "os":
                at = np.zeros((rows, k), dtype)
                at[:ru] = a[r0 : r0 + ru]
                bt = np.zeros((k, cols), dtype)
                bt[:, :cu] = b[:, c0 : c0 + cu]
                acc, cycles = _os_fold(at, bt, real, fold, rec)
                out[r0 : r0 + ru, c0 : c0 + cu] = acc[:ru, :cu]
            elif df == "ws":  # rows over K, columns over N, A's rows stream
                stat = np.zeros((rows, cols), dtype)
                stat[:ru, :cu] = b[r0 : r0 + ru, c0 : c0 + cu]
                stream = np.zeros((m, rows), dtype)
                stream[:, :ru] = a[:, r0 : r0 + ru]
                sums, cycles = _stationary_fold(stat, stream, real, fold, rec)
                out[:, c0 : c0 + cu] += sums[:, :cu]
            else:  # "is": rows over K, columns over M, B's columns stream
                stat = np.zeros((rows, cols), dtype)
                stat[:ru, :cu] = a[c0 : c0 + cu, r0 : r0 + ru].T
                stream = np.zeros((n, rows), dtype)
                stream[:, :ru] = b[r0 : r0 + ru, :].T
                sums, cycles = _stationary_fold(stat, stream, real, fold, rec)
                out[c0 : c0 + cu, :] += sums[:, :cu].T
            fold_busy = rec.busy - busy_before
            mapping.append(float((fold_busy > 0).sum()) / (rows * cols))
            fold_cycles.append(cycles)
            fold += 1
    return PESimResult(out, df, rows, cols, fold_cycles, rec.busy, mapping, rec.snapshots)
