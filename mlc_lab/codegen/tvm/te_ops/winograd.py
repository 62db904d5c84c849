"""The Winograd lowering of an eligible 3x3 conv (NHWC data, HWIO weight): TE stages.

    pad -> V rows -> V (input transform)   \
                                             M (batched matmul over input channels) -> Y rows -> Y
    w   -> U rows -> U (weight transform)  /

The math and the choice of tile size: `mlc_lab.codegen.winograd`. Each 2-D transform is two 1-D
passes, each written out as one sum of nonzero terms per transformed index, selected by index: once
the schedule unrolls those loops, every Select folds to one of the sums. All stages stay buffers
(MATERIALIZE_TAG: inlined, each matmul step would recompute a transform). U's first pass reads only the
weight, so it is marked for build-time packing: on a constant weight it runs once, when the model is built.
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


def _by_index(i, sums: list[tvm.tirx.PrimExpr]) -> tvm.tirx.PrimExpr:
    """sums[i] for the run-time index i: a chain of Selects that unrolling folds away."""
    out = sums[-1]
    for value, expr in reversed(list(enumerate(sums[:-1]))):
        out = tvm.tirx.Select(i == value, expr, out)
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

    # B^T d B as two 1-D passes (rows, then columns): each a Select over one index of a few terms, where
    # the 2-D form's Selects over (e, u) pairs were 16x larger, and LLVM took seconds to fold them
    def input_rows(e, q, r, t, ch):  # (B^T d)[e, q]
        b, row = r // th, r % th
        sums = [
            _weighted_sum([(bt[i][s], p[b, m * row + s, m * t + q, ch]) for s in range(a)], dtype) for i in range(a)
        ]
        return _by_index(e, sums)

    half = compute((a, a, rows, tw, c), input_rows, f"{name}_wino_vrows", MATERIALIZE_TAG, {STAGE: "rows"})

    def input_transform(e, u, r, t, ch):  # (B^T d B)[e, u]
        return _by_index(
            u, [_weighted_sum([(bt[j][q], half[e, q, r, t, ch]) for q in range(a)], dtype) for j in range(a)]
        )

    v = compute((a, a, rows, tw, c), input_transform, f"{name}_wino_v", MATERIALIZE_TAG, {STAGE: "input"})

    def weight_rows(e, q, ch, o):  # (G g)[e, q]
        return _by_index(e, [_weighted_sum([(g[i][s], w[s, q, ch, o]) for s in range(3)], dtype) for i in range(a)])

    # its own loop nest, marked for build-time packing: on a constant weight this pass (the only one TVM's
    # prepack split can take: it reads the parameter) runs once; the second, 3 terms per element, per call
    marks = {STAGE: "weight", PREPACK_ANNOTATION: True}
    wrows = compute((a, 3, c, k), weight_rows, f"{name}_wino_urows", MATERIALIZE_TAG, marks)

    def weight_transform(e, u, ch, o):  # (G g G^T)[e, u]
        return _by_index(u, [_weighted_sum([(g[j][q], wrows[e, q, ch, o]) for q in range(3)], dtype) for j in range(a)])

    wt = compute((a, a, c, k), weight_transform, f"{name}_wino_u", MATERIALIZE_TAG, {STAGE: "weight"})
    rc = te.reduce_axis((0, c), "rc")
    mm = compute(
        (a, a, rows, tw, k),
        lambda e, u, r, t, o: te.sum(v[e, u, r, t, rc] * wt[e, u, rc, o], axis=rc),
        name=f"{name}_wino_m",
        attrs={winograd.TILE_ANNOTATION: m},
    )

    def output_rows(i, u, r, t, o):  # (A^T M)[i, u]
        sums = [_weighted_sum([(at[ii][s], mm[s, u, r, t, o]) for s in range(a)], dtype) for ii in range(m)]
        return _by_index(i, sums)

    z = compute((m, a, rows, tw, k), output_rows, f"{name}_wino_yrows", MATERIALIZE_TAG, {STAGE: "rows"})

    def output_transform(b, y, xx, o):  # (A^T M A)[y % m, xx % m] of tile (y // m, xx // m)
        r, t = b * th + y // m, xx // m
        sums = [_weighted_sum([(at[j][q], z[y % m, q, r, t, o]) for q in range(a)], dtype) for j in range(m)]
        return _by_index(xx % m, sums)

    return compute(out.shape, output_transform, name, MATERIALIZE_TAG, {STAGE: "output", "mlc_lab.winograd_m": m})
