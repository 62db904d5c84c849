"""The register-tiled TensorIR template for one contraction kernel (matmul, dense, conv2d in any layout),
and its default point for this CPU. TVM is imported lazily, so the tuner imports this module cheaply.

A *config* is a JSON-able dict of knob values, e.g.

    {"tile_i0": [8, 16, 1, 4], "tile_i1": [2, 4, 4, 16], "tile_k": [128, 4], "order": "ssrsrs",
     "cache_write": True, "pack": True, "parallel": True, "vectorize": True, "unroll": 64}

(knobs are named after the kernel's loops as the code generator's TensorIR names them: a matmul
C[i0, i1] = sum_k A[i0, k] B[k, i1]; a conv adds rc, ry, rx; `mlc_lab.tuning.space.space_for` lists
the choices the tuner searches).

`apply_config(sch, config)` turns it into TensorIR schedule primitives. The loop structure is
MetaSchedule's CPU template "SSRSRS": every spatial loop split in 4, every reduction loop in 2,

    s0 (parallel, fused)  s1  r0  s2  r1  s3 (the innermost s3 of the last axis is vectorised)

so the s3 tiles make the register tile (accumulators: e.g. 8 rows x 16 lanes), s2/s1 tiles fit the caches,
`cache_write` accumulates a tile in a local buffer, `pack` copies the weight into a layout whose
innermost axis is the vector tile (BLAS's packed B), `unroll` asks for auto-unrolling, and order
"srssrs" moves the outer reduction loop outside s1 (k-blocking outermost, as BLAS does).
Three later knobs (absent from older logs, where they mean off): `taps_outer` (a conv's) orders the reduction
(ry, rx, rc), so consecutive steps broadcast consecutive channels of one input pixel and LLVM has no
taps' shared pixels to keep in (spilled) registers; `init_inner` (any contraction's), where the outer
reduction tiles are 1, puts the whole reduction inside the register tile, so it starts from zeroed
registers; `fuse_pad` (a padded conv's) pads each parallel tile's input patch inside that tile instead of
copying the whole image first.

`default_config(info, isa)` is the point of this template the code generator uses when no tuning record
exists: the register tile sized from the CPU's vector width and register count (`VectorISA`, read from
the target's features, never from a CPU name), the cache tile a few kB, the reduction split so the
register tile stays in registers over a long inner loop. The tuner searches the same template.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from mlc_lab.errors import MlcLabError

Config = dict[str, Any]


@dataclass
class KernelInfo:
    """What the schedule needs to know about a lowered kernel (found by `analyze`)."""

    block: str  #: the contraction block
    spatial: list[tuple[str, int]]  #: (iter var name, extent) of its spatial loops, in order
    reduce: list[tuple[str, int]]  #: the same for its reduction loops
    pads: list[str] = field(default_factory=list)  #: padding stages feeding it
    epilogue: str | None = None  #: an elementwise stage consuming it (a fused group's tail)
    weight: tuple[int, int] | None = None  #: (read index, dim): an operand indexed by the vector axis alone
    pad_lanes: int = 0  #: extent of the padding copy's innermost axis (channels in NHWC/NCHWc, W+2 in NCHW)
    winograd_ok: bool = False  #: a conv the Winograd lowering can replace (`mlc_lab.codegen.winograd`)
    winograd: int = 0  #: the Winograd tile size this kernel was lowered with (0: direct)


#: Marks the block that packs a weight: TVM's `SplitLayoutRewritePreproc` moves it into a kernel of its
#: own, which `mlc_lab.codegen.tvm.prepack` runs at build time where the weight is a constant.
PREPACK_ANNOTATION = "meta_schedule.layout_rewrite_preproc"


class UnsupportedKernel(MlcLabError, ValueError):
    """The kernel is not one contraction (plus padding and an epilogue): this space does not apply."""


def _is_reduction(sch, block) -> bool:
    return any(int(iv.iter_type) != 0 for iv in sch.get(block).iter_vars)


def analyze(sch) -> KernelInfo:
    """Find the contraction block, its loops, padding stages, epilogue and packable weight.

    A Winograd-lowered conv answers with the direct conv's loops (its knobs are the direct conv's)."""
    from tvm.tirx.analysis import undefined_vars

    from mlc_lab.codegen import winograd

    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    reductions = [b for b in blocks if _is_reduction(sch, b)]
    if len(reductions) != 1:
        raise UnsupportedKernel(f"expected one reduction block, found {len(reductions)}")
    main = reductions[0]
    stmt = sch.get(main)
    if winograd.TILE_ANNOTATION in stmt.annotations:
        fields = winograd.info_fields_from_json(str(stmt.annotations[winograd.DIRECT_INFO_ANNOTATION]))
        tile = int(stmt.annotations[winograd.TILE_ANNOTATION])
        return KernelInfo(stmt.name_hint, **fields, winograd_ok=True, winograd=tile)
    if len(sch.get_loops(main)) != len(stmt.iter_vars):
        raise UnsupportedKernel("the contraction's loops were already transformed")
    spatial = [(iv.var.name.removeprefix("v_"), int(iv.dom.extent)) for iv in stmt.iter_vars if int(iv.iter_type) == 0]
    reduce = [(iv.var.name.removeprefix("v_"), int(iv.dom.extent)) for iv in stmt.iter_vars if int(iv.iter_type) != 0]
    pads = [sch.get(b).name_hint for b in sch.get_producers(main) if not _is_reduction(sch, b)]
    consumers = list(sch.get_consumers(main))
    if len(consumers) > 1:
        raise UnsupportedKernel("the contraction has several consumers")
    epilogue = sch.get(consumers[0]).name_hint if consumers else None
    spatial_vars = [iv.var for iv in stmt.iter_vars if int(iv.iter_type) == 0]
    vector_var, other_vars = spatial_vars[-1], spatial_vars[:-1]
    weight = None
    out_buffer = stmt.writes[0].source
    for index, region in enumerate(stmt.reads):
        if region.source.same_as(out_buffer) or region.source.name in pads:
            continue
        uses = [set(v.name for v in undefined_vars(r.min)) for r in region.region]
        if any(v.name in u for u in uses for v in other_vars):
            continue
        dims = [d for d, u in enumerate(uses) if vector_var.name in u]
        if len(dims) == 1 and region.region[dims[0]].min.same_as(vector_var):
            weight = (index, dims[0])
            break
    pad_lanes = int(sch.get(sch.get_loops(sch.get_sblock(pads[0]))[-1]).extent) if pads else 0
    ok = winograd.ELIGIBLE_ANNOTATION in stmt.annotations
    return KernelInfo(sch.get(main).name_hint, spatial, reduce, pads, epilogue, weight, pad_lanes, ok)


# -- applying a config ---------------------------------------------------------------------------------
def apply_config(sch, config: Config, info: KernelInfo | None = None) -> None:
    """Schedule the kernel in `sch` as `config` says (see the module docstring for the loop structure).

    The algorithm is chosen before scheduling (`ConfigSchedule.algorithm`: the lowering reads the
    `winograd` knob); a config for the other algorithm than the kernel's is refused."""
    from mlc_lab.codegen import winograd

    lowered, wanted = winograd.lowered_tile(sch), int(config.get("winograd", 0))
    if lowered != wanted:
        have = f"Winograd F({lowered}x{lowered}, 3x3)" if lowered else "direct"
        raise UnsupportedKernel(f"config has winograd={wanted}, but the kernel was lowered {have}")
    info = info or analyze(sch)
    if lowered:
        winograd.schedule_winograd(sch, config, info, apply_template)
    else:
        apply_template(sch, config, info)


def apply_template(sch, config: Config, info: KernelInfo) -> None:
    """The SSRSRS template itself, on the contraction block `info` names."""
    block = sch.get_sblock(info.block)
    spatial_tiles = [config[f"tile_{n}"] for n, _ in info.spatial]
    reduce_tiles = [config[f"tile_{n}"] for n, _ in info.reduce]
    vector = spatial_tiles[-1][-1]
    if config.get("pack") and info.weight is not None:
        _pack_weight(sch, block, info.weight, vector, config.get("parallel", True), config.get("vectorize", True))
    fused_pads = [] if config.get("inline_pad") or not config.get("fuse_pad") else info.pads
    for pad in info.pads:
        if config.get("inline_pad"):
            sch.compute_inline(sch.get_sblock(pad))
        elif pad not in fused_pads:
            _schedule_pad(sch, sch.get_sblock(pad), vector, config)
    loops = sch.get_loops(block)
    n_spatial = len(info.spatial)
    s = [sch.split(loop, factors=f) for loop, f in zip(loops[:n_spatial], spatial_tiles)]
    r = [sch.split(loop, factors=f) for loop, f in zip(loops[n_spatial:], reduce_tiles)]
    level = lambda k: [split[k] for split in s]
    if config.get("taps_outer") and len(r) > 1:
        r = r[1:] + r[:1]  # (ry, rx, rc): consecutive steps read consecutive channels of one input pixel
    if config.get("init_inner") and r and all(t[0] == 1 for t in reduce_tiles):
        # the outer reduction loops are trivial: with them next to the inner ones, the whole reduction runs
        # inside the register tile, so its accumulators start as zeroed registers (no zero-fill pass)
        order = level(0) + level(1) + level(2) + [x[0] for x in r] + [x[1] for x in r] + level(3)
        anchor = level(1)[-1]
    elif config["order"] == "ssrsrs":
        order = level(0) + level(1) + [x[0] for x in r] + level(2) + [x[1] for x in r] + level(3)
        anchor = level(1)[-1]
    else:  # srssrs: outer reduction loop right inside the parallel loop
        order = level(0) + [x[0] for x in r] + level(1) + level(2) + [x[1] for x in r] + level(3)
        anchor = level(0)[-1]
    sch.reorder(*order)
    consumer = _attach_consumer(sch, block, info, config.get("cache_write", False), anchor)
    outer = sch.fuse(*level(0)) if n_spatial > 1 else level(0)[0]
    for pad in fused_pads:
        _pad_per_tile(sch, sch.get_sblock(pad), outer, vector)
    if config.get("parallel", True):
        sch.parallel(outer)
    if config.get("vectorize", True) and vector > 1:
        sch.vectorize(level(3)[-1])
        if consumer is not None:
            _vectorize_inner(sch, consumer, vector)
    if config.get("unroll", 0):
        sch.annotate(outer, "pragma_auto_unroll_max_step", int(config["unroll"]))
        sch.annotate(outer, "pragma_unroll_explicit", 1)
    sch.decompose_reduction(block, r[0][0] if r else order[-1])


@dataclass
class ConfigSchedule:
    """A schedule hook `(sch, node)` applying one config; `algorithm` tells the lowering which one it needs."""

    config: Config
    info: KernelInfo | None = None

    def __call__(self, sch, node) -> None:
        apply_config(sch, self.config, self.info)

    def algorithm(self, node) -> int:
        """The Winograd tile size the config asks for (0: the direct conv; see `mlc_lab.codegen.winograd`)."""
        return int(self.config.get("winograd", 0))


def _attach_consumer(sch, block, info: KernelInfo, cache_write: bool, anchor):
    """Place the epilogue (or a cache_write copy) after each output tile, so the tile stays hot."""
    if info.epilogue is not None:
        consumer = sch.get_sblock(info.epilogue)
        if cache_write:
            sch.set_scope(block, 0, "local")
    elif cache_write:
        consumer = sch.cache_write(block, 0, "local")
    else:
        return None
    sch.reverse_compute_at(consumer, anchor)
    return consumer


def _schedule_pad(sch, pad, vector: int, config: Config) -> None:
    """The padding copy as its own loop nest: outer loop parallel, inner loop in whole vectors.

    Left scalar, copying a 56x56x64 image cost 1-3% of a 3x3 conv's time on AVX-512 (znver4, 1 thread);
    vectorised (the bounds test depends on the outer indices only when the innermost axis is channels),
    the conv ran as fast as on an input that comes padded."""
    loops = sch.get_loops(pad)
    if config.get("parallel", True):
        sch.parallel(loops[0])
    width = math.gcd(int(sch.get(loops[-1]).extent), vector)  # 8 input channels under a 16-wide tile: 8
    if config.get("vectorize", True) and len(loops) > 1 and width >= 4:
        _vectorize_inner(sch, pad, width)


def _pad_per_tile(sch, pad, outer, vector: int) -> None:
    """Pad, inside each parallel tile, just the input patch the tile reads (knob `fuse_pad`).

    The whole-image padding copy writes a second image (861 kB for 56x56x64 fp32) that then streams
    through L2 again; per tile the patch is written right before the tile reads it, still in L1/L2.
    A patch recopies the rows its neighbours share, so tiles of whole rows (strips) pay least."""
    sch.compute_at(pad, outer)
    width = math.gcd(int(sch.get(sch.get_loops(pad)[-1]).extent), vector)
    if width >= 4:
        _vectorize_inner(sch, pad, width)


def _vectorize_inner(sch, block, vector: int) -> None:
    inner = sch.get_loops(block)[-1]
    extent = int(sch.get(inner).extent)
    if extent % vector == 0 and extent > 1:
        sch.vectorize(sch.split(inner, factors=[None, vector])[1] if extent > vector else inner)


def _pack_weight(sch, block, weight: tuple[int, int], vector: int, parallel: bool, vectorize: bool = True) -> None:
    """Copy the weight so the vector axis's tile is innermost: [.., N, ..] -> [N / v, .., v] (packed B)."""
    index, dim = weight
    extent = int(sch.get(block).reads[index].source.shape[dim])
    ndim = len(sch.get(block).reads[index].source.shape)
    if vector <= 1 or extent % vector or (dim == ndim - 1 and vector == extent):
        return  # nothing to gain: the layout already has the vector axis innermost and whole
    packed = sch.cache_read(block, index, "global")

    def index_map(*idx):
        rest = [x for d, x in enumerate(idx) if d != dim]
        return (idx[dim] // vector, *rest, idx[dim] % vector)

    sch.transform_layout(packed, ("write", 0), index_map)
    sch.annotate(packed, PREPACK_ANNOTATION, True)  # a constant weight is packed once, at build time
    if parallel:
        sch.parallel(sch.get_loops(packed)[0])
    if vectorize and dim == ndim - 1:
        # whole vectors in and out: the scalar copy (an index computation per element) cost ~5% of a 512^3
        # matmul whose B is an input, packed on every call (znver3, AVX2, 1 thread)
        _vectorize_inner(sch, packed, vector)


# -- the CPU's vector unit -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VectorISA:
    """What the register tile is sized from: fp32 lanes per vector register, and how many registers."""

    name: str  #: "AVX-512", "AVX2", "AVX", "SSE", "NEON", or "scalar"
    lanes: int  #: fp32 lanes in one vector register
    registers: int  #: architectural vector registers

    def __str__(self) -> str:
        return f"{self.name} ({self.lanes} fp32 lanes x {self.registers} registers)"


#: Feature sets, widest first: the first one the target has is its level (LLVM feature names).
ISA_LEVELS: tuple[tuple[tuple[str, ...], VectorISA], ...] = (
    (("avx512f",), VectorISA("AVX-512", 16, 32)),
    (("avx2", "fma"), VectorISA("AVX2", 8, 16)),
    (("avx",), VectorISA("AVX", 8, 16)),
    (("sse2",), VectorISA("SSE", 4, 16)),
    (("neon",), VectorISA("NEON", 4, 32)),
)
SCALAR = VectorISA("scalar", 1, 16)


def target_isa(target: Any = None) -> VectorISA:
    """The vector level of a TVM target (default: this machine's), from its LLVM features."""
    import tvm

    if target is None:
        from mlc_lab.codegen.target import host_target

        target = host_target()
    elif not isinstance(target, tvm.target.Target):
        target = tvm.target.Target(target)
    for features, isa in ISA_LEVELS:
        try:
            if tvm.target.codegen.target_has_features(list(features), target):
                return isa
        except Exception:  # a feature name this target's architecture does not know (neon on x86)
            continue
    return SCALAR


# -- the default point ---------------------------------------------------------------------------------------
#: Accumulator budget: registers left for the loaded operand vectors and the broadcast.
SPARE_REGISTERS = 4
#: Rows of the register tile per axis: the tuner's space allows at most this many (`space_for`).
MAX_ROWS = 8
#: Output elements of the cache tile (s2 x s3) accumulated in the local buffer: 4096 fp32 = 16 kB (L1).
CACHE_TILE = 4096
#: Inner reduction steps per register tile (r1): long enough to hide loading and storing the accumulators.
#: The accumulators are loaded and stored once per r1 loop: at 64 steps that cost ~5% of a 512^3 matmul and
#: ~3% of a 3x3 conv (r1 = 4 channels x 9 taps) on AVX-512 (znver4, 1 thread); at 512 (the whole k of the
#: matmul, 32 channels x 9 taps of the conv) both ran 2-5% faster, the packed weight panel still in L1/L2.
INNER_REDUCTION = 512
#: Rows of output per packed weight panel below which packing the weight costs more than it saves.
PACK_MIN_ROWS = 16
#: A windowed conv's inner reduction (channels x taps) up to which it runs whole inside the register tile:
#: 64 channels x 9 taps in one pass keeps the accumulators in registers from their zeroing to their store.
CONV_INNER_REDUCTION = 1024
#: Output rows per tile where each tile pads its own input patch: a patch recopies 2 rows of its neighbours'.
STRIP_ROWS = 4


def has_window(info: KernelInfo) -> bool:
    """Whether the contraction reduces over a window besides its channels (a 3x3 conv's ry, rx)."""
    return len(info.reduce) > 1 and math.prod(e for _, e in info.reduce[1:]) > 1


def _divisor_at_most(extent: int, limit: int) -> int:
    return max(d for d in range(1, min(extent, max(limit, 1)) + 1) if extent % d == 0)


def vector_widths(isa: VectorISA) -> tuple[int, ...]:
    """Whole-vector widths of the vectorised axis's register tile, preferred first.

    With 32 registers, one register wide (and up to `MAX_ROWS` rows): on AVX-512 (znver4, 1 thread) it
    equalled two registers wide on a 512^3 matmul and ran 1.18x as fast on a transformer's 32-row dense.
    With 16 registers, two wide (the classic 4-6 rows x 2 ymm kernel): one wide leaves too few rows;
    with 4-lane registers (SSE, NEON) two wide too, so a tile is at least 8 lanes (the tuner's whole vector).
    """
    lanes = isa.lanes
    one_first = isa.registers >= 32 and lanes >= 8
    order = (lanes, 2 * lanes, lanes // 2) if one_first else (2 * lanes, lanes, lanes // 2)
    return tuple(w for w in order if w >= 4) or (lanes,)


def default_config(info: KernelInfo, isa: VectorISA) -> Config:
    """A well-chosen point of the template for this kernel on a CPU with `isa` (see the module docstring).

    Vector axis (the last spatial one): the first of `vector_widths` that divides it, else the largest
    divisor below two registers. Register rows: from the innermost other spatial axes
    outwards, as many as the accumulator budget allows (registers - spare, in vectors), at most
    `MAX_ROWS` per axis. Cache tile:
    s2 grows the tile to about `CACHE_TILE` outputs. Reduction: the window axes (ry, rx) whole inside,
    the channel axis split so the inner loop runs about `INNER_REDUCTION` steps.
    """
    *others, (vname, vextent) = info.spatial
    lanes = isa.lanes
    vector = next((w for w in vector_widths(isa) if vextent % w == 0), _divisor_at_most(vextent, 2 * lanes))
    vectors = max(1, math.ceil(vector / lanes))
    budget = max(1, (isa.registers - SPARE_REGISTERS) // vectors)
    rows: dict[str, int] = {}
    for name, extent in reversed(others):
        rows[name] = _divisor_at_most(extent, min(MAX_ROWS, budget))
        budget //= rows[name]
    v2 = _divisor_at_most(vextent // vector, max(1, CACHE_TILE // (vector * 32)))
    room = max(1, CACHE_TILE // (vector * v2 * math.prod(rows.values())))
    config: Config = {}
    for name, extent in others:
        r3 = rows[name]
        r2 = _divisor_at_most(extent // r3, room)
        room = max(1, room // r2)
        config[f"tile_{name}"] = [extent // (r2 * r3), 1, r2, r3]
    config[f"tile_{vname}"] = [vextent // (v2 * vector), 1, v2, vector]
    # a windowed conv with channels innermost (NHWC, NCHWc: the padded copy's rows are whole vectors); in
    # NCHW (lanes along the image row) the channels-inner order ran 2.9x slower (56x56 64->64, znver4)
    windowed = has_window(info) and bool(info.pad_lanes) and info.pad_lanes % vector == 0
    inner = CONV_INNER_REDUCTION if windowed else INNER_REDUCTION
    for name, extent in reversed(info.reduce[1:]):  # window axes: whole inside the register tile's loop
        config[f"tile_{name}"] = [1, extent]
        inner = max(1, inner // extent)
    if info.reduce:
        name, extent = info.reduce[0]
        r1 = _divisor_at_most(extent, inner)
        config[f"tile_{name}"] = [extent // r1, r1]
    panel_rows = math.prod(e for _, e in others)  # rows reusing each packed weight element
    config.update(
        order="ssrsrs",
        # a conv without an epilogue accumulates straight into its output: the local tile's copy-out cost
        # ~2% (3x3 conv, znver4, 1 thread); an epilogue needs the local tile to read its result from
        cache_write=not windowed or info.epilogue is not None,
        parallel=True,
        vectorize=True,
        unroll=16,
    )
    whole_reduction = all(config[f"tile_{n}"][0] == 1 for n, _ in info.reduce)
    if windowed:
        # taps outside the channel loop; a whole reduction per register tile starts from zeroed registers
        config.update(taps_outer=True, init_inner=whole_reduction)
    elif info.reduce and whole_reduction and not has_window(info) and isa.registers < 32:
        # a matmul/dense's register tile too: no zero-fill pass over the output tile and no reload of it
        # (512^3 matmul 0.85x -> 0.90x NumPy, AVX2 znver3, 1 thread; AVX-512 defaults unmeasured: unchanged)
        config["init_inner"] = True
    if windowed and others:
        # pad per tile (fuse_pad), the tiles strips of whole image rows
        config["fuse_pad"] = True
        (wname, wextent), rows = others[-1], others[:-1]
        config[f"tile_{wname}"] = [1, 1, wextent // config[f"tile_{wname}"][3], config[f"tile_{wname}"][3]]
        if rows:
            hname, hextent = rows[-1]
            h3 = config[f"tile_{hname}"][3]
            h2 = _divisor_at_most(hextent // h3, max(1, STRIP_ROWS // h3))
            config[f"tile_{hname}"] = [hextent // (h2 * h3), 1, h2, h3]
    if info.weight is not None:
        config["pack"] = panel_rows >= PACK_MIN_ROWS
    if info.pads:
        config["inline_pad"] = False
        config.setdefault("fuse_pad", False)
    return config
