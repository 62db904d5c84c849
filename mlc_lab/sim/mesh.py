"""A 2-D mesh of cores: its shape, rectangular regions on it, and the load that routed traffic puts on its links.

Everything here works on whole regions and NumPy arrays over the mesh, never on one Python object per
core, so a 900,000-core wafer costs the same handful of array operations as a 16-core one.

Routing is dimension-ordered (XY): a transfer first runs along its row, then along its column, the
deadlock-free default of mesh networks. A transfer between two regions is a *bundle* of parallel
lanes (one per row or column of the regions it joins), each carrying an equal share of the bytes.
How a region spreads the data it receives among its own cores is not modelled.
Link loads are accumulated with 2-D difference arrays: each bundle adds a constant to a rectangle of
links in O(1), and one cumulative sum at the end gives every link's load.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def mesh_shape(cores: int) -> tuple[int, int]:
    """(rows, cols) for `cores` cores: the most square exact factorisation with aspect <= 2, otherwise a
    floor(sqrt) square-ish grid that drops the few cores that do not fill a row."""
    if cores <= 0:
        raise ValueError(f"cores must be positive, got {cores}")
    root = math.isqrt(cores)
    for rows in range(root, max(1, (root + 1) // 2) - 1, -1):
        if cores % rows == 0 and cores // rows <= 2 * rows:
            return rows, cores // rows
    return root, cores // root


@dataclass(frozen=True)
class Rect:
    """A rectangle of cores: rows r0..r0+h-1, columns c0..c0+w-1."""

    r0: int
    c0: int
    h: int
    w: int

    @property
    def area(self) -> int:
        return self.h * self.w

    @property
    def center(self) -> tuple[int, int]:
        return self.r0 + self.h // 2, self.c0 + self.w // 2

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.r0, self.c0, self.h, self.w)


def slice_floorplan(weights: Sequence[float], rows: int, cols: int) -> list[Rect]:
    """Cut the mesh into one rectangle per item, areas roughly proportional to `weights`, in order.

    Recursive bisection (a slicing floorplan): split the items into two runs of about equal weight, cut
    the rectangle across its longer side in that ratio, recurse. Consecutive items end up next to each
    other, which keeps a pipeline's stage-to-stage traffic short. Every item gets at least one core.
    """
    n = len(weights)
    if n == 0:
        return []
    if n > rows * cols:
        raise ValueError(f"{n} regions cannot fit on a {rows}x{cols} mesh")
    w = np.maximum(np.asarray(weights, dtype=np.float64), 1e-12)
    out: list[Rect | None] = [None] * n
    _bisect(w, 0, n, Rect(0, 0, rows, cols), out)
    return out  # type: ignore[return-value]


def _bisect(w: np.ndarray, lo: int, hi: int, rect: Rect, out: list) -> None:
    if hi - lo == 1:
        out[lo] = rect
        return
    cum = np.cumsum(w[lo:hi])
    total = cum[-1]
    split = lo + 1 + int(np.argmin(np.abs(cum[:-1] - total / 2)))  # first index of the right half
    left, right = hi - lo, 0
    left = split - lo
    right = hi - split
    frac = float(cum[split - lo - 1] / total)
    horizontal = rect.w >= rect.h  # cut across the longer side
    length, breadth = (rect.w, rect.h) if horizontal else (rect.h, rect.w)
    # Each side needs room for one core per item: at least ceil(items / breadth) lines.
    need_l, need_r = -(-left // breadth), -(-right // breadth)
    if need_l + need_r > length:  # too many items for this cut: give the left side whole lines of single cores
        cut = max(1, min(length - 1, round(length * frac)))
        split = lo + min(cut * breadth, hi - lo - 1)
    else:
        cut = min(max(round(length * frac), need_l), length - need_r)
    if horizontal:
        a, b = Rect(rect.r0, rect.c0, rect.h, cut), Rect(rect.r0, rect.c0 + cut, rect.h, rect.w - cut)
    else:
        a, b = Rect(rect.r0, rect.c0, cut, rect.w), Rect(rect.r0 + cut, rect.c0, rect.h - cut, rect.w)
    _bisect(w, lo, split, a, out)
    _bisect(w, split, hi, b, out)


@dataclass
class LinkLoads:
    """Bytes carried by each link of a rows x cols mesh.

    `east[r, c]` is the link (r, c)-(r, c+1); `south[r, c]` is (r, c)-(r+1, c).
    """

    east: np.ndarray
    south: np.ndarray

    @property
    def max_load(self) -> float:
        return float(max(self.east.max(initial=0.0), self.south.max(initial=0.0)))

    @property
    def total(self) -> float:
        """Byte-hops: every byte counted once per link it crosses."""
        return float(self.east.sum() + self.south.sum())


class Router:
    """Accumulates XY-routed bundles on a mesh; `loads()` returns the per-link totals."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self._east = np.zeros((rows + 1, cols + 1))  # difference arrays, one extra row/col
        self._south = np.zeros((rows + 1, cols + 1))

    @staticmethod
    def _add(diff: np.ndarray, r0: int, r1: int, c0: int, c1: int, value: float) -> None:
        """Add `value` to rows r0..r1-1, columns c0..c1-1 (constant time)."""
        if r1 <= r0 or c1 <= c0:
            return
        diff[r0, c0] += value
        diff[r0, c1] -= value
        diff[r1, c0] -= value
        diff[r1, c1] += value

    def route(self, src: Rect, dst: Rect, nbytes: float) -> int:
        """Send `nbytes` from region `src` to region `dst`; returns the hop count (centre to centre).

        Three candidate bundles, and the one with the most lanes wins (the least load per link):
        horizontal over the rows the regions share, vertical over the columns they share, or an L that
        leaves along all of the source's rows, runs to the destination's centre column, turns, and
        arrives along all of the destination's columns.
        """
        (sr, sc), (dr, dc) = src.center, dst.center
        r_lo, r_hi = max(src.r0, dst.r0), min(src.r0 + src.h, dst.r0 + dst.h)
        c_lo, c_hi = max(src.c0, dst.c0), min(src.c0 + src.w, dst.c0 + dst.w)
        lanes = {"rows": r_hi - r_lo, "cols": c_hi - c_lo, "L": min(src.h, dst.w)}
        best = max(lanes, key=lanes.get)
        if best == "rows":
            self._add(self._east, r_lo, r_hi, min(sc, dc), max(sc, dc), nbytes / lanes["rows"])
        elif best == "cols":
            self._add(self._south, min(sr, dr), max(sr, dr), c_lo, c_hi, nbytes / lanes["cols"])
        else:
            self._add(self._east, src.r0, src.r0 + src.h, min(sc, dc), max(sc, dc), nbytes / src.h)
            self._add(self._south, min(sr, dr), max(sr, dr), dst.c0, dst.c0 + dst.w, nbytes / dst.w)
        return abs(dr - sr) + abs(dc - sc)

    def route_from_edge(self, dst: Rect, nbytes: float, west: bool = True) -> int:
        """Traffic entering (or leaving) the mesh at the west (east) edge, along the region's rows."""
        r, c = dst.center
        if west:
            self._add(self._east, dst.r0, dst.r0 + dst.h, 0, c, nbytes / dst.h)
            return c + 1
        self._add(self._east, dst.r0, dst.r0 + dst.h, c, self.cols - 1, nbytes / dst.h)
        return self.cols - c

    def loads(self) -> LinkLoads:
        east = np.cumsum(np.cumsum(self._east, axis=0), axis=1)[: self.rows, : self.cols - 1]
        south = np.cumsum(np.cumsum(self._south, axis=0), axis=1)[: self.rows - 1, : self.cols]
        return LinkLoads(east, south)
