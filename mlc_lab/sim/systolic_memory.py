"""How many bytes a GEMM moves on a systolic array: SRAM <-> array, and DRAM <-> SRAM.

A first-order model, stated so it can be argued with:

- SRAM traffic follows the dataflow exactly (SCALE-Sim's request counts): every fold reads the tile it
  streams and the tile it holds, and writes its outputs (partial sums once per row fold for WS/IS).

      OS:  ifmap col_folds*M*K,  filter row_folds*K*N,  ofmap M*N
      WS:  ifmap col_folds*M*K,  filter K*N,            ofmap row_folds*M*N
      IS:  ifmap M*K,            filter col_folds*K*N,  ofmap row_folds*M*N

- DRAM traffic: an operand is fetched once when it fits its SRAM (half of it: the other half is the
  double buffer being refilled), otherwise once per pass of the dataflow over it; partial sums spill
  (written and read back) when a column fold's outputs do not fit the ofmap SRAM.
- One fold must fit: its stationary tile and one wavefront of each streamed operand (below) must
  fit their SRAM halves, else the layer cannot run on this configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlc_lab.sim.systolic import FoldStats


@dataclass(frozen=True)
class GemmTraffic:
    """Words moved by one GEMM (multiply by the word size for bytes)."""

    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    dram_psum_spill: int  # partial sums written to DRAM and read back

    @property
    def sram_words(self) -> int:
        return self.sram_ifmap_reads + self.sram_filter_reads + self.sram_ofmap_writes

    @property
    def dram_words(self) -> int:
        return self.dram_ifmap_reads + self.dram_filter_reads + self.dram_ofmap_writes + self.dram_psum_spill


def fold_footprint(s: FoldStats) -> dict[str, int]:
    """Words each buffer must hold at least, for one fold to run at all: (ifmap, filter, ofmap).

    The stationary tile (R x C: outputs for OS, weights for WS, inputs for IS) must be resident;
    streamed operands need one wavefront (a word per array row or column) in flight. Whatever else
    does not fit is re-fetched, which `gemm_traffic` charges as DRAM traffic.
    """
    r, c = s.rows, s.cols
    if s.dataflow == "os":
        return {"ifmap": r, "filter": c, "ofmap": r * c}
    if s.dataflow == "ws":
        return {"ifmap": r, "filter": r * c, "ofmap": c}
    return {"ifmap": r * c, "filter": r, "ofmap": c}


def gemm_traffic(
    s: FoldStats,
    ifmap_words: int,
    buffer_words: dict[str, int],
    ifmap_resident: bool = False,
    ofmap_resident: bool = False,
) -> GemmTraffic:
    """Traffic of one GEMM. `ifmap_words` is the un-lowered input size (im2col duplicates only on chip).

    `buffer_words` are the usable (active-half) SRAM sizes; `*_resident` says the input is already on
    chip / the output may stay there for the next layer (no DRAM transfer).
    """
    m, n, k = s.m, s.n, s.k
    if s.dataflow == "os":
        sram = (s.col_folds * m * k, s.row_folds * k * n, m * n)
        ifmap_passes = s.col_folds
        filter_passes = s.row_folds if k * s.cols > buffer_words["filter"] else 1
        psum_tile = 0
    elif s.dataflow == "ws":
        sram = (s.col_folds * m * k, k * n, s.row_folds * m * n)
        ifmap_passes, filter_passes = s.col_folds, 1
        psum_tile = m * s.cols
    else:
        sram = (m * k, s.col_folds * k * n, s.row_folds * m * n)
        ifmap_passes = 1
        filter_passes = s.col_folds if k * n > buffer_words["filter"] else 1
        psum_tile = s.cols * n
    if ifmap_resident:
        dram_ifmap = 0
    else:
        dram_ifmap = ifmap_words * (1 if ifmap_words <= buffer_words["ifmap"] else ifmap_passes)
    spill = 2 * (s.row_folds - 1) * m * n if psum_tile > buffer_words["ofmap"] else 0
    return GemmTraffic(
        *sram,
        dram_ifmap_reads=dram_ifmap,
        dram_filter_reads=k * n * filter_passes,
        dram_ofmap_writes=0 if ofmap_resident else m * n,
        dram_psum_spill=spill,
    )
