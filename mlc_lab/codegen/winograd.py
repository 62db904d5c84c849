"""Winograd convolution: a 3x3 stride-1 conv as a batched matrix multiply on transformed tiles.

Why: a direct 3x3 conv does 9 multiply-adds per output per input channel, and our register-tiled
direct kernel already runs at 92-95% of the FMA peak (as oneDNN's does), so no schedule makes it much
faster. Winograd's minimal filtering F(m x m, 3 x 3) computes an m x m output tile from an (m+2) x (m+2)
input tile with (m+2)^2 multiplies per channel pair instead of 9 m^2: 2.25x fewer for m = 2, 4x for
m = 4. The algorithm (Lavin & Gray, 2016), per output tile and output channel k:

    V[e, u, t, c] = (B^T d_t B)[e, u]        input tile d_t of channel c, transformed
    U[e, u, c, k] = (G g_ck G^T)[e, u]       the 3x3 filter, transformed (once, for a constant weight)
    M[e, u, t, k] = sum_c V[e, u, t, c] U[e, u, c, k]      (m+2)^2 independent matmuls
    Y_t[:, :, k]  = A^T M[:, :, t, k] A      back to an m x m output tile

The matmuls are the contraction: our register-tiled template (`mlc_lab.codegen.tiling`) schedules
them. Each transform is two 1-D passes (B^T d, then (B^T d) B), additions with small constant weights
written out term by term (no multiply by 0 or 1 is left for LLVM to keep); the first pass is computed
per tile right before the second reads it. Written as one 2-D pass, F(4x4)'s Selects were 16x larger
and one trial's compile took 6.9 s instead of 0.6 s. The price is rounding: every value passes through the
transforms' constants, so outputs differ from the direct conv by ~1e-6 (m = 2) to ~1e-5 (m = 4) of
their largest magnitude in fp32; both are far inside the compiler's tolerances.

In the tuner's space the choice is one knob, `winograd` (0: direct; 2 or 4: the tile size m), offered
only for kernels the lowering marks as eligible (`ELIGIBLE_ANNOTATION`: NHWC, HWIO, 3x3, stride 1,
dilation 1, one group, fp32). The other knobs keep their meaning where they still have one: the output
channels' tiles (the vectorised axis), the input-channel split, the image row's register rows, unroll,
parallel, cache_write. TVM is imported lazily, as in `tiling`.
"""

from __future__ import annotations

import json
import math
from typing import Any

#: F(m, 3) transform matrices (B^T, G, A^T) per output tile size m: Lavin & Gray's interpolation points
#: 0, 1, -1 (m = 2) and 0, 1, -1, 2, -2 (m = 4), plus the point at infinity.
TRANSFORMS: dict[int, tuple[tuple[tuple[float, ...], ...], ...]] = {
    2: (
        ((1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, 1, 0, -1)),
        ((1, 0, 0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0, 0, 1)),
        ((1, 1, 1, 0), (0, 1, -1, -1)),
    ),
    4: (
        (
            (4, 0, -5, 0, 1, 0),
            (0, -4, -4, 1, 1, 0),
            (0, 4, -4, -1, 1, 0),
            (0, -2, -1, 2, 1, 0),
            (0, 2, -1, -2, 1, 0),
            (0, 4, 0, -5, 0, 1),
        ),
        (
            (1 / 4, 0, 0),
            (-1 / 6, -1 / 6, -1 / 6),
            (-1 / 6, 1 / 6, -1 / 6),
            (1 / 24, 1 / 12, 1 / 6),
            (1 / 24, -1 / 12, 1 / 6),
            (0, 0, 1),
        ),
        ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1)),
    ),
}
TILE_SIZES = tuple(TRANSFORMS)

#: Block annotation on a direct conv the Winograd lowering can replace (its value: 1).
ELIGIBLE_ANNOTATION = "mlc_lab.winograd_eligible"
#: Block annotation on a Winograd kernel's matmul: the tile size m.
TILE_ANNOTATION = "mlc_lab.winograd_tile"
#: Block annotation on the same block: the direct conv's `KernelInfo` as JSON. The tuner's knobs are the
#: direct conv's (one search space per conv, whichever algorithm a config picks), so `analyze` answers with it.
DIRECT_INFO_ANNOTATION = "mlc_lab.winograd_direct_info"


def eligible(attrs: dict[str, Any], kernel_shape: tuple, dtype: str) -> bool:
    """Whether a conv2d node's attributes admit the Winograd lowering (see the module docstring)."""
    return (
        dtype == "float32"
        and attrs.get("data_layout") == "NHWC"
        and attrs.get("kernel_layout") == "HWIO"
        and tuple(kernel_shape[:2]) == (3, 3)
        and tuple(attrs.get("strides", ())) == (1, 1)
        and tuple(attrs.get("dilation", ())) == (1, 1)
        and attrs.get("groups", 1) == 1
    )


def tiles(size: int, m: int) -> int:
    """Output tiles of size m along an axis of `size` outputs (the last one may hang over the edge)."""
    return -(-size // m)


def info_to_json(info) -> str:
    return json.dumps(
        {
            "spatial": info.spatial,
            "reduce": info.reduce,
            "pads": info.pads,
            "epilogue": info.epilogue,
            "weight": info.weight,
            "pad_lanes": info.pad_lanes,
        }
    )


def info_fields_from_json(text: str) -> dict[str, Any]:
    """`KernelInfo` fields from `info_to_json`'s text (tiling builds the KernelInfo: no import cycle)."""
    d = json.loads(text)
    return {
        "spatial": [tuple(x) for x in d["spatial"]],
        "reduce": [tuple(x) for x in d["reduce"]],
        "pads": d["pads"],
        "epilogue": d["epilogue"],
        "weight": tuple(d["weight"]) if d["weight"] is not None else None,
        "pad_lanes": d["pad_lanes"],
    }


# -- the schedule ------------------------------------------------------------------------------------------------
def lowered_tile(sch) -> int:
    """The Winograd tile size m the kernel in `sch` was lowered with (0: a direct kernel)."""
    for block in sch.get_child_blocks(sch.get_sblock("root")):
        value = sch.get(block).annotations.get(TILE_ANNOTATION)
        if value is not None:
            return int(value)
    return 0


def schedule_winograd(sch, config: dict[str, Any], info, apply_template) -> None:
    """Schedule a Winograd-lowered conv: the transforms vectorised over channels, the matmuls register-tiled.

    `info` is the direct conv's (its knob names); the matmul's tiles are derived from `config`:
    output channels as the config tiles them, input channels split as it splits them, and the tile
    row's register rows the largest divisor of the tile count not above the config's image-row rows.
    `apply_template` is `tiling.apply_template` (passed in: tiling imports this module)."""
    KernelInfo = type(info)  # noqa: N806 - the class of the info given, tiling's KernelInfo

    root = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    matmul = next(n for n in root if TILE_ANNOTATION in sch.get(sch.get_sblock(n)).annotations)
    stmt = sch.get(sch.get_sblock(matmul))
    (e, a), (u, _), (th, n_th), (tw, n_tw), (k, n_k) = [(iv.var.name.removeprefix("v_"), int(iv.dom.extent))
                                                        for iv in stmt.iter_vars if int(iv.iter_type) == 0]  # fmt: skip
    (rc, n_c) = next((iv.var.name.removeprefix("v_"), int(iv.dom.extent)) for iv in stmt.iter_vars if int(iv.iter_type))
    *_, (wname, _), (kname, _) = info.spatial
    lanes = config[f"tile_{kname}"][-1]
    rows_wanted = config.get(f"tile_{wname}", [1, 1, 1, 1])[-1]
    rows = max(d for d in range(1, min(n_tw, max(1, rows_wanted)) + 1) if n_tw % d == 0)
    gemm = KernelInfo(matmul, [(e, a), (u, a), (th, n_th), (tw, n_tw), (k, n_k)], [(rc, n_c)])
    gemm_config = {
        f"tile_{e}": [a, 1, 1, 1],
        f"tile_{u}": [a, 1, 1, 1],
        f"tile_{th}": [n_th, 1, 1, 1],
        f"tile_{tw}": [n_tw // rows, 1, 1, rows],
        f"tile_{k}": list(config[f"tile_{kname}"]),
        f"tile_{rc}": list(config[f"tile_{info.reduce[0][0]}"]),
        **{key: config[key] for key in ("order", "cache_write", "parallel", "vectorize", "unroll") if key in config},
    }
    apply_template(sch, gemm_config, gemm)
    channel_lanes = math.gcd(lanes, 16) if lanes % 4 == 0 else 1
    parallel = config.get("parallel", True)
    for name in root:
        if name == matmul or name not in _block_names(sch):  # scheduled above; an inlined epilogue
            continue
        block = sch.get_sblock(name)
        role = sch.get(block).annotations.get("mlc_lab.winograd_stage")
        if role in ("input", "weight"):
            _schedule_transform(sch, block, channel_lanes, parallel, role)
        elif role == "rows":
            continue  # computed inside its consumer's loops (`_rows_at`)
        elif role == "output":
            _schedule_output(sch, block, channel_lanes, parallel)
        elif name in info.pads:
            loops = sch.get_loops(block)
            if parallel:
                sch.parallel(loops[0] if len(loops) == 1 else sch.fuse(*loops[:2]))
            _vectorize_last(sch, block, channel_lanes)


def _block_names(sch) -> set[str]:
    return {sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))}


def _vectorize_last(sch, block, lanes: int) -> None:
    inner = sch.get_loops(block)[-1]
    extent = int(sch.get(inner).extent)
    if lanes > 1 and extent % lanes == 0:
        sch.vectorize(sch.split(inner, factors=[None, lanes])[1] if extent > lanes else inner)


def _schedule_transform(sch, block, lanes: int, parallel: bool, role: str) -> None:
    """A transform (e, u, ..., channels): the (e, u) loops unrolled inside, so each Select folds to one
    sum of terms, the channels vectorised innermost; the outer loops parallel. Its first 1-D pass (the
    "rows" stage, if any) is computed per tile and channel vector, right before it is read."""
    e, u, *outer, c = sch.get_loops(block)
    c_out, c_in = sch.split(c, factors=[None, lanes]) if lanes > 1 else (c, None)
    sch.reorder(*outer, c_out, e, u, *([c_in] if c_in is not None else []))
    sch.unroll(e)
    sch.unroll(u)
    if c_in is not None:
        sch.vectorize(c_in)
    _rows_at(sch, block, c_out, lanes)
    if parallel:
        sch.parallel(outer[0])


def _rows_at(sch, block, loop, lanes: int) -> None:
    """Compute the block's "rows" producer (a transform's first 1-D pass) under `loop`: a tile in L1."""
    for producer in sch.get_producers(block):
        if sch.get(producer).annotations.get("mlc_lab.winograd_stage") == "rows":
            sch.compute_at(producer, loop)
            *_, i, j, inner = sch.get_loops(producer)
            sch.unroll(i)
            sch.unroll(j)
            if lanes > 1 and int(sch.get(inner).extent) == lanes:
                sch.vectorize(inner)


def _schedule_output(sch, block, lanes: int, parallel: bool) -> None:
    """The output transform: each m x m output tile's positions unrolled (their Selects fold), channels
    vectorised; an elementwise epilogue after it is computed in the same loop (reverse_compute_inline)."""
    from tvm import s_tir

    tile = int(sch.get(block).annotations["mlc_lab.winograd_m"])
    for consumer in sch.get_consumers(block):
        try:
            sch.reverse_compute_inline(consumer)
        except s_tir.ScheduleError:
            pass  # stays its own loop nest: correct, one more pass over the output
    n, y, x, k = sch.get_loops(block)
    y_out, y_in = sch.split(y, factors=[None, tile])
    x_out, x_in = sch.split(x, factors=[None, tile])
    k_out, k_in = sch.split(k, factors=[None, lanes]) if lanes > 1 else (k, None)
    sch.reorder(n, y_out, x_out, k_out, y_in, x_in, *([k_in] if k_in is not None else []))
    sch.unroll(y_in)
    sch.unroll(x_in)
    if k_in is not None:
        sch.vectorize(k_in)
    _rows_at(sch, block, k_out, lanes)
    if parallel:
        sch.parallel(sch.fuse(n, y_out))
