"""GPU schedules: a shared-memory tiled template for matmul/dense, TVM's dlight rules for the rest.

The matmul template is the classic CUDA one, written with TensorIR primitives (a chapter builds it step
by step). For C[i, j] = sum_k A[i, k] B[k, j] (dense reads B as w[j, k]; batch axes become blockIdx.z):

    blockIdx.y, blockIdx.x     one block_m x block_n tile of C per thread block
    threadIdx.y, threadIdx.x   one thread_m x thread_n register tile per thread (16 x 16 threads)
    for ko:                    the K loop, block_k at a time:
        A_shared, B_shared  <- cooperative loads: every thread copies a few elements, float4-wide
        (__syncthreads)
        for ki, ii, jj:        C_local[ii, jj] += A_shared[ii, ki] * B_shared[ki, jj]
    C[...] <- epilogue(C_local)  (bias, relu...: fused, written once)

Each element of A and B is read from global memory N / block_n resp. M / block_m times instead of N
resp. M times, and each value loaded from shared memory feeds thread_n resp. thread_m multiply-adds.

Everything else (convolutions, reductions, elementwise kernels, small-M dense where a tile would be
mostly idle) gets `tvm.s_tir.dlight`'s default GPU rules, the baseline TVM's own CUDA pipeline uses:
Matmul, GEMV, Reduction, GeneralReduction, then Fallback (bind the spatial loops to threads). A rule
that raises on a kernel (dlight's Matmul does on some of ours) is skipped for the next.
"""

from __future__ import annotations

from dataclasses import dataclass

import tvm
from tvm import s_tir

from mlc_lab.codegen.tiling import UnsupportedKernel, analyze
from mlc_lab.errors import MlcLabError

#: Threads per block along y and x in the tiled template: 256 threads, 8 warps.
THREADS_Y = THREADS_X = 16
#: Widest vector (elements) of a cooperative load: float4, 16 bytes, one transaction per thread.
MAX_VECTOR = 4
#: Block tiles tried, largest first: a larger tile reuses more but leaves fewer blocks to fill the SMs.
BLOCK_TILES = (64, 32, 16)
BLOCK_K = (16, 8, 4, 2, 1)
#: Blocks a default tile should give at least: a grid smaller than the GPU's SM count (108 to 132 on
#: the named GPUs) leaves SMs idle, so smaller tiles (less reuse) win on small matmuls.
MIN_BLOCKS = 64
SCHEDULED = "tirx.is_scheduled"


class GPUScheduleError(MlcLabError, RuntimeError):
    """No GPU schedule fits a kernel (not even binding its loops to threads). Names the kernel."""


@dataclass(frozen=True)
class TileConfig:
    """The tiled matmul's knobs (see the module docstring)."""

    block_m: int = 64
    block_n: int = 64
    block_k: int = 16
    shared: bool = True  #: stage A and B tiles in shared memory (False: every thread reads global memory)

    @property
    def thread_m(self) -> int:
        return self.block_m // THREADS_Y

    @property
    def thread_n(self) -> int:
        return self.block_n // THREADS_X

    @property
    def threads(self) -> int:
        return THREADS_Y * THREADS_X


def _largest_divisor(extent: int, choices: tuple[int, ...]) -> int | None:
    return next((c for c in choices if extent % c == 0), None)


def default_tile(m: int, n: int, k: int) -> TileConfig | None:
    """The largest tiles dividing the problem that still give MIN_BLOCKS blocks (else the most blocks), or
    None where M or N is below one 16-wide tile (a GEMV: dlight's rules fit it better)."""
    block_k = _largest_divisor(k, BLOCK_K)
    tiles = [(bm, bn) for bm in BLOCK_TILES for bn in BLOCK_TILES if m % bm == 0 and n % bn == 0]
    if not tiles or block_k is None:
        return None
    tiles.sort(key=lambda t: -t[0] * t[1])  # most reuse first
    enough = [t for t in tiles if (m // t[0]) * (n // t[1]) >= MIN_BLOCKS]
    block_m, block_n = enough[0] if enough else tiles[-1]
    return TileConfig(block_m, block_n, block_k)


def matmul_axes(sch: s_tir.Schedule):
    """(info, m, n, k) for a kernel that is one matmul-like contraction (batch.., i, j; one k), else None."""
    try:
        info = analyze(sch)
    except UnsupportedKernel:
        return None
    if len(info.reduce) != 1 or len(info.spatial) < 2 or info.pads:
        return None
    return info, info.spatial[-2][1], info.spatial[-1][1], info.reduce[0][1]


def operand_reads(sch: s_tir.Schedule, block) -> list[int]:
    """Indices of the block's reads that are operands (not its own accumulator)."""
    stmt = sch.get(block)
    written = {w.source.name for w in stmt.writes}
    return [i for i, r in enumerate(stmt.reads) if r.source.name not in written]


def schedule_matmul(sch: s_tir.Schedule, config: TileConfig | None = None) -> bool:
    """Apply the tiled template to a matmul-like kernel; False (and `sch` untouched) where it does not fit."""
    found = matmul_axes(sch)
    if found is None:
        return False
    info, m, n, k = found
    config = config or default_tile(m, n, k)
    if config is None or m % config.block_m or n % config.block_n or k % config.block_k:
        return False
    trial = sch.copy()
    try:
        _apply_tiles(trial, info, config)
    except (s_tir.ScheduleError, RuntimeError):  # TVM's InternalError is a RuntimeError
        return False
    _apply_tiles(sch, info, config)
    return True


def _apply_tiles(sch: s_tir.Schedule, info, config: TileConfig) -> None:
    block = sch.get_sblock(info.block)
    operands = operand_reads(sch, block)
    *batch, i, j, k = sch.get_loops(block)
    bi, ti, ii = sch.split(i, [None, THREADS_Y, config.thread_m])
    bj, tj, jj = sch.split(j, [None, THREADS_X, config.thread_n])
    ko, ki = sch.split(k, [None, config.block_k])
    sch.reorder(*batch, bi, bj, ti, tj, ko, ki, ii, jj)
    if batch:
        sch.bind(sch.fuse(*batch) if len(batch) > 1 else batch[0], "blockIdx.z")
    sch.bind(bi, "blockIdx.y")
    sch.bind(bj, "blockIdx.x")
    sch.bind(ti, "threadIdx.y")
    sch.bind(tj, "threadIdx.x")
    # register tile: the accumulators live in registers ("local"); the epilogue reads them there
    if info.epilogue is not None:
        sch.set_scope(block, 0, "local")
        out = sch.get_sblock(info.epilogue)
    else:
        out = sch.cache_write(block, 0, "local")
    sch.reverse_compute_at(out, tj, preserve_unit_loops=True)
    _vectorize_store(sch, out, config.thread_n)
    if config.shared:
        for index in operands:  # the order matters not: each cache_read adds one read of the block
            cooperative_load(sch, block, index, ko, config.threads)
    sch.annotate(tj, "pragma_auto_unroll_max_step", 256)
    sch.annotate(tj, "pragma_unroll_explicit", 1)
    sch.decompose_reduction(block, ko)


def _vectorize_store(sch: s_tir.Schedule, block, lanes: int) -> None:
    """Write a thread's row of the register tile as one vector (float4) where the output's last axis is j."""
    inner = sch.get_loops(block)[-1]  # the loops reverse_compute_at made follow the output's axes
    if int(sch.get(inner).extent) == lanes and lanes in (2, 4):
        sch.vectorize(inner)


def cooperative_load(sch: s_tir.Schedule, block, read_index: int, at, threads: int):
    """Stage one operand's tile in shared memory under loop `at`, copied by all threads, vectorised.

    The copy's loops are fused and split (rest, threadIdx.y, threadIdx.x, vector): consecutive threads
    copy consecutive vectors, so a warp's loads coalesce into a few wide transactions. A tile that is
    not a whole number of vectors per thread is copied one element at a time, the excess threads idle.
    """
    copy = sch.cache_read(block, read_index, "shared")
    sch.compute_at(copy, at, preserve_unit_loops=True)
    loops = sch.get_loops(copy)
    loops = loops[[sch.get(loop).same_as(sch.get(at)) for loop in loops].index(True) + 1 :]
    extents = [int(sch.get(loop).extent) for loop in loops]
    total = 1
    for e in extents:
        total *= e
    vector = next((v for v in (MAX_VECTOR, 2) if extents[-1] % v == 0 and total % (threads * v) == 0), 1)
    _, ty, tx, vec = sch.split(sch.fuse(*loops), [None, THREADS_Y, THREADS_X, vector])
    sch.bind(ty, "threadIdx.y")
    sch.bind(tx, "threadIdx.x")
    if vector > 1:
        sch.vectorize(vec)
    return copy


def matmul_prim_func(m: int, n: int, k: int, dtype: str = "float32") -> tvm.tirx.PrimFunc:
    """C[i, j] = sum_k A[i, k] B[k, j] as an unscheduled PrimFunc (loops i, j, k; buffers A, B, C)."""
    from tvm import te

    a, b = te.placeholder((m, k), dtype, name="A"), te.placeholder((k, n), dtype, name="B")
    r = te.reduce_axis((0, k), name="k")
    c = te.compute((m, n), lambda i, j: te.sum(a[i, r] * b[r, j], axis=r), name="C")
    return te.create_prim_func([a, b, c]).with_attr("global_symbol", "matmul")


# -- the teaching baseline: one thread per output element, no reuse ----------------------------------------------
def schedule_naive(sch: s_tir.Schedule, threads: int = 256) -> None:
    """Bind every loop nest's spatial loops to (blockIdx.x, threadIdx.x); reductions run inside a thread."""
    for block in list(sch.get_child_blocks(sch.get_sblock("root"))):
        iters = sch.get(block).iter_vars
        loops = sch.get_loops(block)
        spatial = [loop for loop, iv in zip(loops, iters) if int(iv.iter_type) == 0]
        if not spatial or len(loops) != len(iters) or any(_bound(sch, loop) for loop in loops):
            continue  # transformed, or sharing loops with a block bound before (an attached epilogue)
        fused = sch.fuse(*spatial) if len(spatial) > 1 else spatial[0]
        extent = int(sch.get(fused).extent)
        bx, tx = sch.split(fused, [None, min(threads, extent)])
        sch.bind(bx, "blockIdx.x")
        sch.bind(tx, "threadIdx.x")


def _bound(sch: s_tir.Schedule, loop) -> bool:
    return sch.get(loop).kind == tvm.tirx.ForKind.THREAD_BINDING


# -- dlight, the baseline for every other kernel --------------------------------------------------------------
def dlight_rules() -> list:
    """TVM's default GPU rules, in the order its CUDA pipeline applies them."""
    from tvm.s_tir import dlight as dl

    return [dl.gpu.Matmul(), dl.gpu.GEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(), dl.gpu.Fallback()]


def apply_dlight(sch: s_tir.Schedule, target: tvm.target.Target, name: str = "") -> None:
    """Schedule the kernel in `sch` (in place) by the first dlight rule that applies and does not raise.

    dlight returns a new Schedule; its trace is replayed on `sch`, so this works as a lowering hook. A
    kernel no rule takes gets `schedule_naive`; GPUScheduleError (naming the kernel and every rule's
    reason) where even that fails.
    """
    errors = []
    func = sch.mod["main"]
    with target:
        for rule in dlight_rules():
            try:
                space = rule.apply(func, target, False)
                if space is None:
                    continue
                chosen = space[0] if isinstance(space, list) else space
                trial = sch.copy()
                chosen.trace.apply_to_schedule(trial, remove_postproc=False)
            except Exception as e:  # noqa: BLE001 - a rule that breaks on this kernel: try the next one
                errors.append(f"{type(rule).__name__}: {_first_line(e)}")
                continue
            chosen.trace.apply_to_schedule(sch, remove_postproc=False)
            return
    try:
        trial = sch.copy()
        schedule_naive(trial)
    except s_tir.ScheduleError as e:
        errors.append(f"naive binding: {_first_line(e)}")
        raise GPUScheduleError(f"kernel {name or 'main'}: no GPU schedule applies ({'; '.join(errors)})") from None
    schedule_naive(sch)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else type(error).__name__


def dlight_schedule(func: tvm.tirx.PrimFunc, target: tvm.target.Target, name: str = "") -> tvm.tirx.PrimFunc:
    """`func` scheduled by `apply_dlight`, marked as scheduled."""
    sch = s_tir.Schedule(func)
    apply_dlight(sch, target, name)
    return sch.mod["main"].with_attr(SCHEDULED, True)
