"""The default schedule: register tiles for contractions, one vectorised inner loop for the rest.

It is a hook with the signature every schedule has here, `schedule(sch, node) -> None`, called by
`lower_node` once per kernel after inlining (so `sch` holds at most: padding copies, reductions, and
the output stage). The tuner of a later chapter plugs in at the same place.

A contraction (an op the registry marks OUT_FUSABLE: matmul, dense, conv2d in any layout) gets the
tuner's own register-tiled template at its default point for this CPU (`mlc_lab.codegen.tiling`:
`default_config`, sized from the vector width and register count the target's features give), when
that point vectorises a contiguous axis (or packs the weight so it becomes one) whole vectors wide.
Otherwise, per loop nest (one per remaining block):
- elementwise: split the innermost loop by the vector width and vectorise it, fuse the rest and
  parallelise;
- a reduction whose innermost output axis is contiguous (or unused) in every input it reads, like a
  conv in NCHW (x), a matmul (j) or a blocked NCHW8c conv (the 8 lanes): move that axis inside the
  reduction loops and vectorise it ("spatial" strategy, many independent accumulators);
- a reduction whose innermost reduction axis is contiguous in every input, like dense (x @ w.T: k is
  the last axis of both) or a row sum: split that axis and `rfactor` it, so the vector lanes
  accumulate partial sums that are added at the end ("rfactor" strategy);
- otherwise the longest output axis divisible by 8, strided reads and all: an NCHW conv on a 2x2
  image has no contiguous axis worth vectorising, and gathering 16 output channels' weights still
  ran 7x faster than scalar code;
- anything else: parallel outer loops only.
In every case an elementwise epilogue (bias, bn, relu...) is placed inside the reduction's
parallel loop, right after the accumulation it reads.

Measured on this machine (1 thread): 3x3 conv 33 GFLOP/s (naive loops 1.4), dense 48 (naive 1.2).
"""

from __future__ import annotations

import functools

from tvm import s_tir
from tvm.tirx.analysis import undefined_vars

from mlc_lab.codegen.tiling import (
    Config,
    KernelInfo,
    UnsupportedKernel,
    VectorISA,
    analyze,
    apply_config,
    default_config,
    target_isa,
    vector_widths,
)
from mlc_lab.codegen.tvm.lower import block_name, epilogue_pair, is_reduction, num_spatial, root_blocks
from mlc_lab.ir.graph import Node
from mlc_lab.ir.ops import is_contraction_kernel

#: Vector widths tried, widest first (16 fp32 lanes = one AVX-512 register).
VECTOR_WIDTHS = (16, 8, 4)
#: Loop nests with fewer iterations than this run on one thread (a parallel launch costs microseconds).
MIN_PARALLEL_WORK = 1 << 14


def default_schedule(sch: s_tir.Schedule, node: Node) -> None:
    """Schedule every loop nest of one kernel (see the module docstring)."""
    if is_contraction(node) and schedule_register_tiled(sch, host_isa()):
        return
    pair = epilogue_pair(sch)
    anchor, epilogue = (block_name(sch, b) for b in pair) if pair else (None, None)
    for block in root_blocks(sch):
        name = block_name(sch, block)
        if name == epilogue:
            continue  # scheduled together with its reduction
        try:
            if is_reduction(sch, block):
                schedule_reduction(sch, block, sch.get_sblock(epilogue) if name == anchor else None)
            else:
                schedule_elementwise(sch, block)
        except s_tir.ScheduleError:
            continue  # every primitive preserves meaning: a half-scheduled nest is slower, never wrong


# -- contractions: the register-tiled template -----------------------------------------------------------------
@functools.cache
def host_isa() -> VectorISA:
    """This machine's vector level (AVX-512, AVX2, ...), read once from the host target's features."""
    return target_isa()


def is_contraction(node: Node) -> bool:
    """A GEMM op (matmul, dense, conv2d), or a fused group built around exactly one (the registry's answer)."""
    return is_contraction_kernel(node)


def register_tiled_config(sch: s_tir.Schedule, isa: VectorISA) -> tuple[KernelInfo, Config] | None:
    """The template's default point for this kernel, or None where it would not pay (module docstring)."""
    try:
        info = analyze(sch)
    except UnsupportedKernel:
        return None
    config = default_config(info, isa)
    if info.winograd:  # lowered as Winograd (a record chose it): its matmuls read contiguous channels
        return info, {**config, "winograd": info.winograd}
    if config[f"tile_{info.spatial[-1][0]}"][-1] not in vector_widths(isa):
        return None  # e.g. a 2-wide image row: the strided strategies below vectorise a longer axis
    block = sch.get_sblock(info.block)
    vector_var = [iv.var for iv in sch.get(block).iter_vars][len(info.spatial) - 1]
    if not (config.get("pack") or contiguous_in_reads(sch, block, vector_var)):
        return None  # the lanes would gather strided weights (dense with one row: the rfactor strategy wins)
    return info, config


def schedule_register_tiled(sch: s_tir.Schedule, isa: VectorISA) -> bool:
    """Apply the template's default point if it pays here; False leaves `sch` as it was."""
    chosen = register_tiled_config(sch, isa)
    if chosen is None:
        return False
    info, config = chosen
    trial = sch.copy()  # a primitive failing halfway must leave `sch` whole for the other strategies
    try:
        apply_config(trial, config, info)
    except s_tir.ScheduleError:
        return False
    apply_config(sch, config, info)
    return True


# -- helpers --------------------------------------------------------------------------------------------------
def vector_width(extent: int) -> int | None:
    for width in VECTOR_WIDTHS:
        if extent % width == 0:
            return width
    return None


def extents(sch: s_tir.Schedule, loops) -> list[int]:
    return [int(sch.get(loop).extent) for loop in loops]


def work(sch: s_tir.Schedule, block) -> int:
    total = 1
    for extent in extents(sch, sch.get_loops(block)):
        total *= extent
    return total


def parallelize(sch: s_tir.Schedule, loops, amount: int) -> None:
    """Fuse `loops` (a perfect nest) into one and run it on the thread pool, if the work is worth it."""
    if not loops or amount < MIN_PARALLEL_WORK:
        return
    fused = sch.fuse(*loops) if len(loops) > 1 else loops[0]
    sch.parallel(fused)


def _uses(expr, var) -> bool:
    return any(v.same_as(var) for v in undefined_vars(expr))


def contiguous_in_reads(sch: s_tir.Schedule, block, var) -> bool:
    """True if every buffer the block reads (its accumulator aside) uses `var` at most in its last axis."""
    stmt = sch.get(block)
    written = {w.source.name for w in stmt.writes}
    for read in stmt.reads:
        if read.source.name in written:
            continue
        if any(_uses(r.min, var) for r in list(read.region)[:-1]):
            return False
    return True


# -- the strategies ----------------------------------------------------------------------------------------------
def schedule_elementwise(sch: s_tir.Schedule, block) -> None:
    loops = sch.get_loops(block)
    if not loops:
        return
    amount = work(sch, block)
    width = vector_width(extents(sch, loops[-1:])[0])
    if width is not None:
        outer, lanes = sch.split(loops[-1], [None, width])
        loops = [*loops[:-1], outer]
        parallelize(sch, loops, amount)
        sch.vectorize(lanes)
    else:
        parallelize(sch, loops[:-1], amount)


def schedule_reduction(sch: s_tir.Schedule, block, epilogue=None) -> None:
    """Pick the vector lanes of a reduction: a contiguous output axis, else the reduction axis
    (rfactor), else the longest output axis even if strided (gathers beat scalar code)."""
    loops = sch.get_loops(block)
    spatial = num_spatial(sch, block)
    if spatial == 0 or len(loops) != len(sch.get(block).iter_vars):
        return
    iter_vars = [iv.var for iv in sch.get(block).iter_vars]
    sizes = extents(sch, loops)
    width = vector_width(sizes[spatial - 1])
    if width is not None and contiguous_in_reads(sch, block, iter_vars[spatial - 1]):
        vectorize_spatial(sch, block, epilogue, spatial - 1, width)
        return
    width = vector_width(sizes[-1])
    if width is not None and spatial < len(loops) and contiguous_in_reads(sch, block, iter_vars[-1]):
        vectorize_rfactor(sch, block, epilogue, width)
        return
    strided = [a for a in range(spatial) if (vector_width(sizes[a]) or 0) >= 8]
    if strided:
        axis = max(strided, key=lambda a: sizes[a])
        vectorize_spatial(sch, block, epilogue, axis, vector_width(sizes[axis]))
        return
    amount = work(sch, block)
    if epilogue is not None:
        sch.reverse_compute_at(epilogue, loops[spatial - 1])
    parallelize(sch, loops[:spatial], amount)


def vectorize_spatial(sch: s_tir.Schedule, block, epilogue, axis: int, width: int) -> None:
    """Loops (s.., s_axis, s.., r..) -> parallel(s.., s_axis/width, s..), r.., vectorized(width).

    Order matters to TVM: the epilogue must be attached while the block is still a proper reduction
    (all output loops outside the reduction loops), so the lanes move inside the reduction last.
    """
    amount = work(sch, block)
    loops = sch.get_loops(block)
    spatial = num_spatial(sch, block)
    outer, lanes = sch.split(loops[axis], [None, width])
    later = loops[axis + 1 : spatial]
    if later:
        sch.reorder(*later, lanes)  # lanes become the innermost output loop
    reductions = loops[spatial:]
    if epilogue is not None:
        sch.reverse_compute_at(epilogue, later[-1] if later else outer)
    sch.reorder(*reductions, lanes)
    parallelize(sch, [*loops[:axis], outer, *later], amount)
    sch.vectorize(lanes)
    if epilogue is not None:
        sch.vectorize(sch.get_loops(epilogue)[-1])
    sch.decompose_reduction(block, reductions[0])  # the init runs once per tile, not inside r..


def vectorize_rfactor(sch: s_tir.Schedule, block, epilogue, width: int) -> None:
    """Split the innermost reduction axis k into (k/width, width) and reduce the width lanes last.

    With an epilogue, the innermost output axis is tiled too, so the epilogue runs on a whole
    vector of outputs: a gelu's erf computed one element at a time made dense+gelu 7x slower.
    """
    amount = work(sch, block)
    loops = sch.get_loops(block)
    outputs = num_spatial(sch, block)
    tile = vector_width(extents(sch, loops[outputs - 1 : outputs])[0]) if epilogue is not None else None
    if tile is not None:
        sch.split(loops[outputs - 1], [None, tile])
        outputs += 1
    _, lanes = sch.split(loops[-1], [None, width])
    partial = sch.rfactor(lanes, 0)  # partial[lane, s..] = sum over the other r of ...; block sums lanes
    loops = sch.get_loops(block)
    where = loops[outputs - 1]
    if epilogue is not None:
        sch.reverse_compute_at(epilogue, loops[outputs - 2] if tile is not None else where)
    sch.compute_at(partial, where)
    inner = sch.get_loops(partial)[outputs:]  # (lane, r.., k/width): move the lane innermost
    sch.reorder(*inner[1:], inner[0])
    parallelize(sch, loops[: outputs - 1] if tile is not None else loops[:outputs], amount)
    sch.vectorize(inner[0])
    if tile is not None:
        sch.vectorize(sch.get_loops(epilogue)[-1])
