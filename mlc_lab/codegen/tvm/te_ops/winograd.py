"""The Winograd lowering of an eligible 3x3 conv (NHWC data, HWIO weight): five TE stages.

    pad  ->  V (input transform)  \\
                                    M (batched matmul over input channels)  ->  Y (output transform)
    w    ->  U (weight transform) /

The math and the choice of tile size: `mlc_lab.codegen.winograd`. Each transform is written out as
one sum of nonzero terms per transformed position (e, u), selected by position: once the schedule
unrolls the (e, u) loops, every Select folds to one of those sums. V, U and Y are kept as buffers
(MATERIALIZE_TAG: inlined, each matmul step would recompute a transform); U reads only the weight,
so it is marked for build-time packing: a constant weight is transformed once, when the model is built.
"""

from __future__ import annotations

import tvm
from tvm import te

from mlc_lab.codegen import winograd
from mlc_lab.codegen.tiling import PREPACK_ANNOTATION
from mlc_lab.codegen.tvm.te_ops.registry import MATERIALIZE_TAG, PAD_TAG, compute, const
from mlc_lab.ir.types import TensorType

STAGE = "mlc_lab.winograd_stage"


def _by_position(e, u, sums: dict[tuple[int, int], tvm.tirx.PrimExpr]) -> tvm.tirx.PrimExpr:
    """sums[(e, u)] for the run-time position (e, u): a chain of Selects that unrolling folds away."""
    keys = sorted(sums)
    out = sums[keys[-1]]
    for key in reversed(keys[:-1]):
        out = tvm.tirx.Select(tvm.tirx.all(e == key[0], u == key[1]), sums[key], out)
    return out


def _weighted_sum(terms: list[tuple[float, tvm.tirx.PrimExpr]], dtype: str) -> tvm.tirx.PrimExpr:
    """sum of coef * value over the nonzero coefficients (a coefficient 1 adds the value as it is)."""
    out = None
    for coef, value in terms:
        if coef == 0:
            continue
        term = value if coef == 1 else value * const(coef, dtype)
        out = term if out is None else out + term
    return out if out is not None else const(0, dtype)


def winograd_conv2d(
    x: te.Tensor, w: te.Tensor, m: int, padding: tuple[int, int, int, int], out: TensorType, name: str
) -> te.Tensor:
    """Y = conv2d(x, w) by Winograd F(m x m, 3 x 3); x is NHWC, w HWIO, stride 1 (see the module docstring)."""
    bt, g, at = winograd.TRANSFORMS[m]
    a = m + 2
    dtype = str(x.dtype)
    n, h, wd, c = (int(d) for d in x.shape)
    k = int(w.shape[3])
    _, oh, ow, _ = out.shape
    top, left, _, _ = padding
    th, tw = winograd.tiles(oh, m), winograd.tiles(ow, m)
    rows = n * th  # the batch folded into the tile rows

    def padded(b, y, xx, ch):
        inside = tvm.tirx.all(y >= top, y < top + h, xx >= left, xx < left + wd)
        return tvm.tirx.if_then_else(inside, x[b, y - top, xx - left, ch], const(0, dtype))

    p = compute((n, m * th + 2, m * tw + 2, c), padded, name=f"{name}_pad", tag=PAD_TAG)

    def input_transform(e, u, r, t, ch):
        b, row = r // th, r % th
        d = lambda i, j: p[b, m * row + i, m * t + j, ch]  # noqa: E731
        sums = {
            (i, j): _weighted_sum([(bt[i][s] * bt[j][q], d(s, q)) for s in range(a) for q in range(a)], dtype)
            for i in range(a)
            for j in range(a)
        }
        return _by_position(e, u, sums)

    v = compute((a, a, rows, tw, c), input_transform, f"{name}_wino_v", MATERIALIZE_TAG, {STAGE: "input"})

    def weight_transform(e, u, ch, o):
        sums = {
            (i, j): _weighted_sum([(g[i][s] * g[j][q], w[s, q, ch, o]) for s in range(3) for q in range(3)], dtype)
            for i in range(a)
            for j in range(a)
        }
        return _by_position(e, u, sums)

    marks = {STAGE: "weight", PREPACK_ANNOTATION: True}
    wt = compute((a, a, c, k), weight_transform, f"{name}_wino_u", MATERIALIZE_TAG, marks)
    rc = te.reduce_axis((0, c), "rc")
    mm = compute(
        (a, a, rows, tw, k),
        lambda e, u, r, t, o: te.sum(v[e, u, r, t, rc] * wt[e, u, rc, o], axis=rc),
        name=f"{name}_wino_m",
        attrs={winograd.TILE_ANNOTATION: m},
    )

    def output_transform(b, y, xx, o):
        r, t = b * th + y // m, xx // m
        sums = {
            (i, j): _weighted_sum([(at[i][s] * at[j][q], mm[s, q, r, t, o]) for s in range(a) for q in range(a)], dtype)
            for i in range(m)
            for j in range(m)
        }
        return _by_position(y % m, xx % m, sums)

    return compute(out.shape, output_transform, name, MATERIALIZE_TAG, {STAGE: "output", "mlc_lab.winograd_m": m})
