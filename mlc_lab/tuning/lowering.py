"""Node -> scheduled PrimFunc, through the compiler's own lowering when it is there.

`lower(node, hook)` returns the PrimFunc `mlc_lab.codegen.tvm` would build for `node` with `hook`
as its schedule, plus the arrays of constants the kernel takes as extra inputs. A small TE fallback
(matmul, dense, conv2d in any layout, written like the code generator's: padding as its own stage)
keeps the tuner usable without the code generator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from mlc_lab.ir.graph import Node

ScheduleHook = Callable[..., None]


def codegen_available() -> bool:
    """True when this checkout of mlc_lab has the TVM code generator (not a namespace from elsewhere)."""
    import mlc_lab

    return (Path(mlc_lab.__file__).parent / "codegen" / "tvm" / "lower.py").exists()


def lower(node: Node, hook: ScheduleHook | None) -> tuple[object, list[np.ndarray]]:
    if not codegen_available():
        return _fallback_lower(node, hook), []
    from mlc_lab.codegen.tvm.lower import lower_node

    kernel = lower_node(node, schedule=hook)
    return kernel.func, list(kernel.constants)


# -- fallback TE ----------------------------------------------------------------------------------------
def _fallback_lower(node: Node, hook: ScheduleHook | None):
    from tvm import s_tir, te

    params = [te.placeholder(x.shape, x.dtype, name=f"p{i}") for i, x in enumerate(node.inputs)]
    builders = {"matmul": _matmul, "dense": _dense, "conv2d": _conv2d}
    if node.op not in builders:
        raise NotImplementedError(f"fallback lowering has no {node.op!r} (only {sorted(builders)})")
    out = builders[node.op](node, *params)
    sch = s_tir.Schedule(te.create_prim_func([*params, out]))
    if hook is not None:
        hook(sch, node)
    return sch.mod["main"]


def _matmul(node, a, b):
    from tvm import te

    k = te.reduce_axis((0, a.shape[-1]), "k")
    return te.compute(node.shape, lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="matmul")


def _dense(node, x, w):
    from tvm import te

    k = te.reduce_axis((0, x.shape[-1]), "k")
    return te.compute(node.shape, lambda i, j: te.sum(x[i, k] * w[j, k], axis=k), name="dense")


def _conv2d(node, x, w):
    import tvm
    from tvm import te

    from mlc_lab.ir import layout as L

    a = node.attrs
    dl, kl = a["data_layout"], a["kernel_layout"]
    if a["groups"] != 1 or a["strides"] != (1, 1) or a["dilation"] != (1, 1):
        raise NotImplementedError("fallback conv2d: groups=1, stride 1, dilation 1 only")
    top, left, bottom, right = a["padding"]
    n, c, h, wd = L.canonical_shape(tuple(int(d) for d in x.shape), "NCHW", dl)
    o, ci, kh, kw = L.canonical_shape(tuple(int(d) for d in w.shape), "OIHW", kl)
    pshape = L.layout_shape((n, c, h + top + bottom, wd + left + right), "NCHW", dl)

    def pad(*idx):
        b, ch, y, xx = _to_canonical(idx, dl, "NCHW")
        inside = tvm.tirx.all(y >= top, y < top + h, xx >= left, xx < left + wd)
        return tvm.tirx.if_then_else(inside, x[*_from_canonical((b, ch, y - top, xx - left), dl, "NCHW")], 0.0)

    xp = te.compute(pshape, pad, name="pad", tag="pad")
    rc, ry, rx = te.reduce_axis((0, ci), "rc"), te.reduce_axis((0, kh), "ry"), te.reduce_axis((0, kw), "rx")

    def conv(*idx):
        b, oc, y, xx = _to_canonical(idx, dl, "NCHW")
        src = _from_canonical((b, rc, y + ry, xx + rx), dl, "NCHW")
        wgt = _from_canonical((oc, rc, ry, rx), kl, "OIHW")
        return te.sum(xp[*src] * w[*wgt], axis=[rc, ry, rx])

    return te.compute(node.shape, _simplified(conv, node.shape), name="conv2d")


def _simplified(fcompute, shape):
    """Simplify indices knowing output ranges, so `(C*8 + c) // 8` reads as `C` (as the codegen does)."""
    import tvm
    from tvm.sym import Analyzer

    def element(*index):
        analyzer = Analyzer()
        for var, extent in zip(index, shape):
            analyzer.bind(var, tvm.ir.Range(0, int(extent)))
        return analyzer.simplify(fcompute(*index))

    return element


def _blocks(layout: str) -> dict[str, int]:
    from mlc_lab.ir.layout import parse_layout

    return {axis.upper(): f for axis, f in parse_layout(layout) if f is not None}


def _to_canonical(index, layout, canonical):
    from mlc_lab.ir.layout import parse_layout

    at = {axis: i for (axis, _), i in zip(parse_layout(layout), index)}
    blocks = _blocks(layout)
    return [at[c] * blocks[c] + at[c.lower()] if c in blocks else at[c] for c in canonical]


def _from_canonical(coords, layout, canonical):
    from mlc_lab.ir.layout import parse_layout

    coord = dict(zip(canonical, coords))
    blocks = _blocks(layout)
    out = []
    for axis, factor in parse_layout(layout):
        if factor is not None:
            out.append(coord[axis.upper()] % factor)
        elif axis in blocks:
            out.append(coord[axis] // blocks[axis])
        else:
            out.append(coord[axis])
    return out
