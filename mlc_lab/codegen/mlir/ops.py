"""One emitter per IR op: `emit_<op>(f, node, args) -> SSA name of the result`, looked up in `EMITTERS`.

Heavy ops map to linalg named ops (`linalg.matmul`, `linalg.batch_matmul`, `linalg.conv_2d_nchw_fchw`,
`linalg.pooling_nchw_max`), data movement to the tensor dialect (`tensor.pad`, `tensor.expand_shape`,
`tensor.extract_slice`, `tensor.insert_slice`), and everything elementwise to `linalg.generic` with a
scalar body from `scalar.py` (IREE's linalg has no `linalg.add`; the generic is the portable spelling).
Ops in other layouts than NCHW/OIHW are converted there and back, exactly as the interpreter does.

Dynamic dimensions (`SymDim`, written `?`): an emitter marked `@dynamic_dims` takes them (its sizes go
through `FunctionEmitter.size`/`product`); `emit_node` refuses any other op on a node with a `?` axis,
naming the op, the node and the axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlc_lab.codegen.mlir.scalar import SCALAR_BODIES, Body, is_float, mlir_scalar, scalar_body
from mlc_lab.codegen.mlir.syntax import (
    MLIRLoweringError,
    Operand,
    broadcast_exprs,
    dynamic_axis_error,
    identity,
    is_static_dim,
    tensor_type,
)
from mlc_lab.ir import Node, OpKind, Trait, get_op, has_trait, is_source
from mlc_lab.ir import layout as L
from mlc_lab.ir.empty_inputs import data_free_value
from mlc_lab.ir.ops import channel_axis

if TYPE_CHECKING:  # emit.py drives these emitters and imports this module; a runtime import back would be a cycle
    from mlc_lab.codegen.mlir.emit import FunctionEmitter

Emitter = Callable[["FunctionEmitter", Node, list[str]], str]


def dynamic_dims(emitter: Emitter) -> Emitter:
    """Mark an emitter as taking `?` axes (sizes from `FunctionEmitter.size`); unmarked ones are refused them."""
    emitter.dynamic_dims = True  # type: ignore[attr-defined]
    return emitter


def _first_dynamic_axis(node: Node) -> tuple[str, int, object] | None:
    """(value name, axis, dim) of the first `?` axis among the node's inputs and output, or None."""
    for x in (node, *node.inputs):
        for axis, d in enumerate(x.shape):
            if not is_static_dim(d):
                return x.name, axis, d
    return None


def emit_node(f: FunctionEmitter, node: Node, args: Sequence[str]) -> str:
    """Dispatch on the op; an op without an emitter is an error that names it."""
    emitter = emitter_for(node.op)
    if emitter is None:
        raise MLIRLoweringError(f"no MLIR lowering for op {node.op!r} (node %{node.name})")
    dynamic = None if getattr(emitter, "dynamic_dims", False) else _first_dynamic_axis(node)
    if dynamic is not None:
        value, axis, dim = dynamic
        raise dynamic_axis_error(node.op, node.name, axis, dim, f"its emitter needs static sizes (axis of %{value})")
    if node.type.numel == 0:  # nothing to compute (and a mean's 1 / count would divide by 0)
        return f.empty(node.shape, node.dtype)
    fill = data_free_value(node)  # every input empty: a constant (sum over an empty axis = 0)
    if fill is not None:
        return f.filled(fill.reshape(-1)[0].item(), node.shape, node.dtype)
    return emitter(f, node, args)


def emitter_for(op: str) -> Emitter | None:
    """The emitter of `op`: its own, or the elementwise one if it has a scalar body (ops registered after
    import included: their body is derived from the registry's scalar definition)."""
    emitter = EMITTERS.get(op)
    if emitter is None and scalar_body(op) is not None:
        return emit_elementwise
    return emitter


def _ty(node: Node) -> str:
    return tensor_type(node.shape, node.dtype)


# == elementwise: one generic, operands indexed by broadcasting =====================================
def operand_exprs(node: Node, index: int, out_exprs: Sequence[str]) -> list[str]:
    """How input `index` of an elementwise node is indexed, given the node's own index expressions."""
    x = node.inputs[index]
    if has_trait(node.op, Trait.CHANNELWISE) and index > 0:  # a per-channel parameter
        return [out_exprs[channel_axis(node.op, node.attrs, node.type.rank)]]
    return broadcast_exprs(x.shape, out_exprs, node.shape)


@dynamic_dims
def emit_elementwise(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    out = identity(node.type.rank)
    operands = [(a, _ty(x), operand_exprs(node, i, out)) for i, (a, x) in enumerate(zip(args, node.inputs))]
    body = scalar_body(node.op)
    return f.generic(operands, node.shape, node.dtype, lambda b, s: body(b, node, s[:-1], node.inputs[0].dtype))


# == fused groups ===================================================================================
def _elementwise_only(node: Node) -> bool:
    return all(scalar_body(n.op) is not None for n in node.subgraph.ops)


@dynamic_dims
def emit_fused(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """An elementwise group is one generic; any other group is a private function and a call."""
    if _elementwise_only(node):
        return _fused_generic(f, node, args)
    symbol = f.module.add_function(node.subgraph, node.name, private=True)
    types = ", ".join(_ty(x) for x in node.inputs)
    return f.op(f"func.call @{symbol}({', '.join(args)}) : ({types}) -> {_ty(node)}", node.name)


def _fused_generic(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """Walk the sub-graph back from its output, giving every value the index expressions it is read at."""
    sub = node.subgraph
    exprs: dict[Node, list[str]] = {sub.outputs[0]: identity(node.type.rank)}
    operands: list[Operand] = []
    slots: dict[tuple[Node, tuple[str, ...]], int] = {}
    for member in reversed(sub.ops):
        for i, x in enumerate(member.inputs):
            e = operand_exprs(member, i, exprs[member])
            if x.op == "input" or x.op == "constant":
                key = (x, tuple(e))
                if key not in slots:
                    slots[key] = len(operands)
                    ssa = args[sub.inputs.index(x)] if x.op == "input" else f.value(x)
                    operands.append((ssa, _ty(x), e))
            elif exprs.setdefault(x, e) != e:
                raise MLIRLoweringError(f"fused group %{node.name}: %{x.name} is read at two different indices")

    def body(b: Body, scalars: list[str]) -> str:
        env: dict[Node, str] = {}
        for member in sub.ops:
            ins = []
            for i, x in enumerate(member.inputs):
                if x in env:
                    ins.append(env[x])
                else:
                    ins.append(scalars[slots[(x, tuple(operand_exprs(member, i, exprs[member])))]])
            env[member] = scalar_body(member.op)(b, member, ins, member.inputs[0].dtype)
        return env[sub.outputs[0]]

    return f.generic(operands, node.shape, node.dtype, body, hint=node.name)


# == matrix products ================================================================================
def _matmul2d(f: FunctionEmitter, a: str, b: str, m: object, k: object, n: object, dtype: str) -> str:
    out = f.filled(0, (m, n), dtype)
    return f.op(
        f"linalg.matmul ins({a}, {b} : {tensor_type((m, k), dtype)}, {tensor_type((k, n), dtype)}) "
        f"outs({out} : {tensor_type((m, n), dtype)}) -> {tensor_type((m, n), dtype)}",
        "matmul",
    )


@dynamic_dims
def emit_dense(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """x[..., K] @ w[N, K]^T: flatten the leading dims into M, transpose w, one matmul, restore the dims.

    A constant weight is stored transposed ([K, N], the layout the matmul reads), so the module holds a
    plain `linalg.matmul` that every tool in the chain (xDSL included) reads the same way.
    """
    x, w = node.inputs
    n, k = w.shape
    m = f.product(x.shape[:-1])
    x2 = f.reshape(args[0], x.shape, (m, k), x.dtype)
    if w.op == "constant" and w not in f.values:
        wt = f.constant(np.ascontiguousarray(w.value.T), f"{w.name}_t")
    else:
        wt = f.transpose(args[1], (n, k), (1, 0), w.dtype)
    y = _matmul2d(f, x2, wt, m, k, n, node.dtype)
    return f.reshape(y, (m, n), node.shape, node.dtype)


@dynamic_dims
def emit_matmul(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """2-D: linalg.matmul. Batched: broadcast both batches, flatten them into one, linalg.batch_matmul."""
    a, b = node.inputs
    (m, k), n, dt = a.shape[-2:], b.shape[-1], node.dtype
    if a.type.rank == 2 and b.type.rank == 2:
        return _matmul2d(f, args[0], args[1], m, k, n, dt)
    batch = node.shape[:-2]
    nb = f.product(batch)
    a3 = f.reshape(_broadcast(f, args[0], a.shape, (*batch, m, k), dt), (*batch, m, k), (nb, m, k), dt)
    b3 = f.reshape(_broadcast(f, args[1], b.shape, (*batch, k, n), dt), (*batch, k, n), (nb, k, n), dt)
    out = f.filled(0, (nb, m, n), dt)
    y = f.op(
        f"linalg.batch_matmul ins({a3}, {b3} : {tensor_type((nb, m, k), dt)}, {tensor_type((nb, k, n), dt)}) "
        f"outs({out} : {tensor_type((nb, m, n), dt)}) -> {tensor_type((nb, m, n), dt)}",
        "bmm",
    )
    return f.reshape(y, (nb, m, n), node.shape, dt)


def _broadcast(f: FunctionEmitter, x: str, shape: Sequence[int], target: Sequence[int], dtype: str) -> str:
    if tuple(shape) == tuple(target):
        return x
    operand = (x, tensor_type(shape, dtype), broadcast_exprs(shape, identity(len(target)), target))
    return f.generic([operand], target, dtype, lambda b, s: s[0], hint="broadcast")


@dynamic_dims
def emit_broadcast_to(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    return _broadcast(f, args[0], node.inputs[0].shape, node.shape, node.dtype)


# == layouts ========================================================================================
def _expanded(canonical: str, layout: str) -> tuple[list[str], dict[str, int]]:
    """The canonical axes with each blocked axis followed by its block ("NCHW", "NCHW8c" -> N C c H W)."""
    blocks = {axis.upper(): size for axis, size in L.parse_layout(layout) if size is not None}
    order: list[str] = []
    for axis in canonical:
        order += [axis, axis.lower()] if axis in blocks else [axis]
    return order, blocks


def to_canonical(f: FunctionEmitter, x: str, shape: Sequence[int], canonical: str, layout: str, dtype: str) -> str:
    """`layout` -> `canonical` order (what `layout.from_layout` does): one transpose, one reshape."""
    if layout == canonical:
        return x
    order, _ = _expanded(canonical, layout)
    letters = [a for a, _ in L.parse_layout(layout)]
    perm = [letters.index(a) for a in order]
    t = f.transpose(x, shape, perm, dtype)
    return f.reshape(t, [shape[p] for p in perm], L.canonical_shape(tuple(shape), canonical, layout), dtype)


def from_canonical(f: FunctionEmitter, x: str, shape: Sequence[int], canonical: str, layout: str, dtype: str) -> str:
    """`canonical` -> `layout` (what `layout.to_layout` does): split blocked axes, transpose, reshape."""
    if layout == canonical:
        return x
    order, blocks = _expanded(canonical, layout)
    split: list[int] = []
    for axis, size in zip(canonical, shape):
        split += [size // blocks[axis], blocks[axis]] if axis in blocks else [size]
    perm = [order.index(a) for a, _ in L.parse_layout(layout)]
    t = f.transpose(f.reshape(x, shape, split, dtype), split, perm, dtype)
    return f.reshape(t, [split[p] for p in perm], L.layout_shape(tuple(shape), canonical, layout), dtype)


def emit_layout_transform(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    src, dst = node.attrs["src_layout"], node.attrs["dst_layout"]
    canonical = L.primal_axes(src)
    x = node.inputs[0]
    mid = to_canonical(f, args[0], x.shape, canonical, src, x.dtype)
    return from_canonical(f, mid, L.canonical_shape(x.shape, canonical, src), canonical, dst, x.dtype)


# == convolution and pooling ========================================================================
def _i64s(values: Sequence[int]) -> str:
    return f"dense<[{', '.join(map(str, values))}]> : tensor<{len(values)}xi64>"


def emit_conv2d(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """NHWC keeps its layout (linalg.conv_2d_nhwc_hwcf); others go through NCHW/OIHW; groups via ngchw."""
    x, w = node.inputs
    a, dt = node.attrs, node.dtype
    if a["data_layout"] == "NHWC" and a["groups"] == 1:
        return _conv_nhwc(f, node, args)
    xs = L.canonical_shape(x.shape, "NCHW", a["data_layout"])
    ws = L.canonical_shape(w.shape, "OIHW", a["kernel_layout"])
    xc = to_canonical(f, args[0], x.shape, "NCHW", a["data_layout"], dt)
    wc = to_canonical(f, args[1], w.shape, "OIHW", a["kernel_layout"], dt)
    pt, pl, pb, pr = a["padding"]
    xp = f.pad(xc, xs, (0, 0, pt, pl), (0, 0, pb, pr), 0.0, dt)
    xps = (xs[0], xs[1], xs[2] + pt + pb, xs[3] + pl + pr)
    out = L.canonical_shape(node.shape, "NCHW", a["data_layout"])
    attrs = f"{{dilations = {_i64s(a['dilation'])}, strides = {_i64s(a['strides'])}}}"
    g = a["groups"]
    if g == 1:
        init = f.filled(0, out, dt)
        y = f.op(
            f"linalg.conv_2d_nchw_fchw {attrs} ins({xp}, {wc} : {tensor_type(xps, dt)}, {tensor_type(ws, dt)}) "
            f"outs({init} : {tensor_type(out, dt)}) -> {tensor_type(out, dt)}",
            "conv",
        )
    else:
        xg_shape = (xps[0], g, xps[1] // g, *xps[2:])
        wg_shape = (g, ws[0] // g, *ws[1:])
        og_shape = (out[0], g, out[1] // g, *out[2:])
        xg = f.reshape(xp, xps, xg_shape, dt)
        wg = f.reshape(wc, ws, wg_shape, dt)
        init = f.filled(0, og_shape, dt)
        yg = f.op(
            f"linalg.conv_2d_ngchw_gfchw {attrs} ins({xg}, {wg} : {tensor_type(xg_shape, dt)}, "
            f"{tensor_type(wg_shape, dt)}) outs({init} : {tensor_type(og_shape, dt)}) -> {tensor_type(og_shape, dt)}",
            "conv",
        )
        y = f.reshape(yg, og_shape, out, dt)
    return from_canonical(f, y, out, "NCHW", a["data_layout"], dt)


def _conv_nhwc(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    x, w = node.inputs
    a, dt = node.attrs, node.dtype
    ws = L.canonical_shape(w.shape, "OIHW", a["kernel_layout"])
    wc = to_canonical(f, args[1], w.shape, "OIHW", a["kernel_layout"], dt)
    hwio = f.transpose(wc, ws, (2, 3, 1, 0), dt) if a["kernel_layout"] != "HWIO" else args[1]
    hwio_shape = (ws[2], ws[3], ws[1], ws[0])
    pt, pl, pb, pr = a["padding"]
    xp = f.pad(args[0], x.shape, (0, pt, pl, 0), (0, pb, pr, 0), 0.0, dt)
    n, h, wd, c = x.shape
    xps = (n, h + pt + pb, wd + pl + pr, c)
    init = f.filled(0, node.shape, dt)
    attrs = f"{{dilations = {_i64s(a['dilation'])}, strides = {_i64s(a['strides'])}}}"
    return f.op(
        f"linalg.conv_2d_nhwc_hwcf {attrs} ins({xp}, {hwio} : {tensor_type(xps, dt)}, {tensor_type(hwio_shape, dt)}) "
        f"outs({init} : {_ty(node)}) -> {_ty(node)}",
        "conv",
    )


def _pool_padding(node: Node, h: int, w: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """(top, left, bottom, right) padding including the extra rows/cols ceil_mode's last window needs."""
    a = node.attrs
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a.get("dilation", (1, 1))
    pt, pl, pb, pr = a["padding"]
    oh, ow = L.canonical_shape(node.shape, "NCHW", a["data_layout"])[2:]
    eb = max(0, (oh - 1) * sh + dh * (kh - 1) + 1 - (h + pt + pb))
    er = max(0, (ow - 1) * sw + dw * (kw - 1) + 1 - (w + pl + pr))
    return (pt, pl, pb + eb, pr + er), (oh, ow)


def _pool(f: FunctionEmitter, node: Node, args: list[str], kind: str, fill: float) -> str:
    """linalg.pooling_nchw_{max,sum} over a padded NCHW input; returns the NCHW result."""
    x, a, dt = node.inputs[0], node.attrs, node.dtype
    xs = L.canonical_shape(x.shape, "NCHW", a["data_layout"])
    xc = to_canonical(f, args[0], x.shape, "NCHW", a["data_layout"], dt)
    (pt, pl, pb, pr), (oh, ow) = _pool_padding(node, *xs[2:])
    xp = f.pad(xc, xs, (0, 0, pt, pl), (0, 0, pb, pr), fill, dt)
    xps = (xs[0], xs[1], xs[2] + pt + pb, xs[3] + pl + pr)
    # linalg's pooling ops need the input to end where the last window ends: a 2x2/2 pool over 3 rows
    # never reads row 3, so crop it (NumPy and PyTorch simply ignore it)
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["strides"], a.get("dilation", (1, 1))
    used = (xs[0], xs[1], (oh - 1) * sh + dh * (kh - 1) + 1, (ow - 1) * sw + dw * (kw - 1) + 1)
    if used != xps:
        xp = f.op(
            f"tensor.extract_slice {xp}[0, 0, 0, 0] [{', '.join(map(str, used))}] [1, 1, 1, 1] : "
            f"{tensor_type(xps, dt)} to {tensor_type(used, dt)}",
            "pool_input",
        )
        xps = used
    out = (xs[0], xs[1], oh, ow)
    init = f.filled(fill, out, dt)
    window = f.empty(a["kernel"], dt)
    attrs = f"{{dilations = {_i64s(a.get('dilation', (1, 1)))}, strides = {_i64s(a['strides'])}}}"
    return f.op(
        f"linalg.pooling_nchw_{kind} {attrs} ins({xp}, {window} : {tensor_type(xps, dt)}, "
        f"{tensor_type(a['kernel'], dt)}) outs({init} : {tensor_type(out, dt)}) -> {tensor_type(out, dt)}",
        f"pool_{kind}",
    )


def emit_max_pool2d(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    dt = node.dtype
    lowest = -np.inf if is_float(dt) else np.iinfo(dt).min
    y = _pool(f, node, args, "max", lowest)
    out = L.canonical_shape(node.shape, "NCHW", node.attrs["data_layout"])
    return from_canonical(f, y, out, "NCHW", node.attrs["data_layout"], dt)


def avg_pool_divisor(node: Node, h: int, w: int) -> np.ndarray:
    """How many elements each output window averages (PyTorch's rules), as an [OH, OW] array.

    Windows are rectangles, so the count is a product of per-axis counts computed in Python.
    """
    a = node.attrs
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = a["kernel"], a["strides"], a["padding"]
    oh, ow = L.canonical_shape(node.shape, "NCHW", a["data_layout"])[2:]

    def counts(size: int, k: int, s: int, lo: int, hi: int, n: int) -> np.ndarray:
        start = np.arange(n) * s - lo
        first, last = (-lo, size + hi) if a["count_include_pad"] else (0, size)
        return np.minimum(start + k, last) - np.maximum(start, first)

    return np.outer(counts(h, kh, sh, pt, pb, oh), counts(w, kw, sw, pl, pr, ow)).astype(node.dtype)


def emit_avg_pool2d(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    x, dt, layout = node.inputs[0], node.dtype, node.attrs["data_layout"]
    xs = L.canonical_shape(x.shape, "NCHW", layout)
    total = _pool(f, node, args, "sum", 0.0)
    out = L.canonical_shape(node.shape, "NCHW", layout)
    divisor = f.constant(avg_pool_divisor(node, *xs[2:]), "divisor")
    operands = [(total, tensor_type(out, dt), identity(4)), (divisor, tensor_type(out[2:], dt), ["d2", "d3"])]
    y = f.generic(operands, out, dt, lambda b, s: b.arith("arith.divf", None, dt, s[0], s[1]), hint="avg")
    return from_canonical(f, y, out, "NCHW", layout, dt)


def emit_global_avg_pool2d(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    x, dt, layout = node.inputs[0], node.dtype, node.attrs["data_layout"]
    if layout not in ("NCHW", "NHWC"):
        xs = L.canonical_shape(x.shape, "NCHW", layout)
        xc = to_canonical(f, args[0], x.shape, "NCHW", layout, dt)
        y = _mean_keepdims(f, xc, xs, (2, 3), dt)
        return from_canonical(f, y, (xs[0], xs[1], 1, 1), "NCHW", layout, dt)
    return _mean_keepdims(f, args[0], x.shape, (2, 3) if layout == "NCHW" else (1, 2), dt)


# == reductions =====================================================================================
_COMBINE = {
    "sum": ("arith.addf", "arith.addi"),
    "max": ("arith.maximumf", "arith.maxsi"),
    "min": ("arith.minimumf", "arith.minsi"),
}


def _init_value(kind: str, dtype: str) -> float:
    if kind == "sum":
        return 0
    if dtype == "bool":  # max is any (starts False), min is all (starts True)
        return 0 if kind == "max" else 1
    if is_float(dtype):
        return -np.inf if kind == "max" else np.inf
    info = np.iinfo(dtype)
    return info.min if kind == "max" else info.max


def reduce(
    f: FunctionEmitter,
    operands: Sequence[Operand],
    shape: Sequence[int],
    axes: Sequence[int],
    kind: str,
    dtype: str,
    element: Callable[[Body, list[str]], str] | None = None,
) -> str:
    """Reduce over `axes` of an iteration space `shape`; the result drops those axes.

    `element(b, scalars)` is what is accumulated (default: the first operand), so
    sum((x - mean)^2) or sum(exp(x - max)) need no intermediate tensor.
    """
    kept = [d for i, d in enumerate(shape) if i not in axes]
    init = f.filled(_init_value(kind, dtype), kept, dtype)
    fop, iop = _COMBINE[kind]

    def body(b: Body, s: list[str]) -> str:
        value = element(b, s[:-1]) if element else s[0]
        return b.arith(fop, iop, dtype, value, s[-1])

    return f.generic(operands, kept, dtype, body, rank=len(shape), reduced=frozenset(axes), init=init, hint=kind)


def _static_axes(node: Node, shape: Sequence[object], axes: Sequence[int], why: str) -> None:
    for a in axes:
        if not is_static_dim(shape[a]):
            raise dynamic_axis_error(node.op, node.name, a, shape[a], why)


def _kept_exprs(rank: int, axes: Sequence[int]) -> list[str]:
    return [f"d{i}" for i in range(rank) if i not in axes]


def _scale(f: FunctionEmitter, x: str, shape: Sequence[int], factor: float, dtype: str) -> str:
    operand = [(x, tensor_type(shape, dtype), identity(len(shape)))]
    return f.generic(
        operand, shape, dtype, lambda b, s: b.arith("arith.mulf", None, dtype, s[0], b.const(factor, dtype))
    )


def _mean_keepdims(f: FunctionEmitter, x: str, shape: Sequence[int], axes: Sequence[int], dt: str) -> str:
    total = reduce(f, [(x, tensor_type(shape, dt), identity(len(shape)))], shape, axes, "sum", dt)
    kept = [d for i, d in enumerate(shape) if i not in axes]
    n = int(np.prod([shape[a] for a in axes]))
    mean = _scale(f, total, kept, 1.0 / n, dt)
    return f.reshape(mean, kept, [1 if i in axes else d for i, d in enumerate(shape)], dt)


def _emit_reduce(kind: str) -> Emitter:
    @dynamic_dims
    def emit(f: FunctionEmitter, node: Node, args: list[str]) -> str:
        x, dt = node.inputs[0], node.dtype
        axes = (
            tuple(range(x.type.rank))
            if node.attrs["axes"] is None
            else tuple(a % x.type.rank for a in node.attrs["axes"])
        )
        operand = [(args[0], _ty(x), identity(x.type.rank))]
        y = reduce(f, operand, x.shape, axes, "sum" if kind == "mean" else kind, dt)
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
        if kind == "mean":
            _static_axes(node, x.shape, axes, "a mean divides by a static count")
            count = int(np.prod([x.shape[a] for a in axes]))
            if is_float(dt):
                y = _scale(f, y, kept, 1.0 / count, dt)
            else:  # the interpreter's mean-then-astype truncates toward zero, as divsi does
                operand = [(y, tensor_type(kept, dt), identity(len(kept)))]
                y = f.generic(
                    operand, kept, dt, lambda b, s: b.op(f"arith.divsi {s[0]}, {b.const(count, dt)}", mlir_scalar(dt))
                )
        return f.reshape(y, kept, node.shape, dt)

    return emit


@dynamic_dims
def emit_softmax(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """max, then sum(exp(x - max)) in one reduction, then one elementwise generic."""
    x, dt = node.inputs[0], node.dtype
    rank, axis = x.type.rank, node.attrs["axis"] % x.type.rank
    full, kept = identity(rank), _kept_exprs(rank, (axis,))
    kept_shape = [d for i, d in enumerate(x.shape) if i != axis]
    xin = (args[0], _ty(x), full)
    mx = reduce(f, [xin], x.shape, (axis,), "max", dt)
    mx_op = (mx, tensor_type(kept_shape, dt), kept)

    def shifted_exp(b: Body, s: list[str]) -> str:
        return b.arith("math.exp", None, dt, b.arith("arith.subf", None, dt, s[0], s[1]))

    total = reduce(f, [xin, mx_op], x.shape, (axis,), "sum", dt, shifted_exp)
    sum_op = (total, tensor_type(kept_shape, dt), kept)
    log = node.op == "log_softmax"

    def normalize(b: Body, s: list[str]) -> str:
        if log:  # x - max - log(sum)
            return b.arith(
                "arith.subf", None, dt, b.arith("arith.subf", None, dt, s[0], s[1]), b.arith("math.log", None, dt, s[2])
            )
        return b.arith("arith.divf", None, dt, shifted_exp(b, s[:2]), s[2])

    return f.generic([xin, mx_op, sum_op], x.shape, dt, normalize, hint=node.op)


@dynamic_dims
def emit_layer_norm(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """mean, then variance as sum((x - mean)^2) / n, then (x - mean) * rsqrt(var + eps) * gamma + beta."""
    x, gamma, _ = node.inputs
    dt, rank = node.dtype, x.type.rank
    axes = tuple(range(node.attrs["axis"] % rank, rank))
    _static_axes(node, x.shape, axes, "the normalized axes must be static")
    n = int(np.prod([x.shape[a] for a in axes]))
    kept_shape = [d for i, d in enumerate(x.shape) if i not in axes]
    full, kept = identity(rank), _kept_exprs(rank, axes)
    xin = (args[0], _ty(x), full)
    mean = _scale(f, reduce(f, [xin], x.shape, axes, "sum", dt), kept_shape, 1.0 / n, dt)
    mean_op = (mean, tensor_type(kept_shape, dt), kept)

    def squared(b: Body, s: list[str]) -> str:
        d = b.arith("arith.subf", None, dt, s[0], s[1])
        return b.arith("arith.mulf", None, dt, d, d)

    var_sum = reduce(f, [xin, mean_op], x.shape, axes, "sum", dt, squared)
    var_op = (var_sum, tensor_type(kept_shape, dt), kept)
    param = [f"d{a}" for a in axes]
    gamma_op, beta_op = (args[1], _ty(gamma), param), (args[2], _ty(gamma), param)
    eps = node.attrs["eps"]

    def normalize(b: Body, s: list[str]) -> str:
        x_, mean_, var_, g_, beta_ = s[:5]
        var_ = b.arith("arith.mulf", None, dt, var_, b.const(1.0 / n, dt))
        inv = b.arith("math.rsqrt", None, dt, b.arith("arith.addf", None, dt, var_, b.const(eps, dt)))
        centered = b.arith("arith.subf", None, dt, x_, mean_)
        scaled = b.arith("arith.mulf", None, dt, b.arith("arith.mulf", None, dt, centered, inv), g_)
        return b.arith("arith.addf", None, dt, scaled, beta_)

    return f.generic([xin, mean_op, var_op, gamma_op, beta_op], x.shape, dt, normalize, hint="layer_norm")


# == data movement ==================================================================================
@dynamic_dims
def emit_reshape(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    return f.reshape(args[0], node.inputs[0].shape, node.shape, node.dtype)


@dynamic_dims
def emit_transpose(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    x = node.inputs[0]
    perm = node.attrs["perm"] if node.attrs["perm"] is not None else tuple(reversed(range(x.type.rank)))
    return f.transpose(args[0], x.shape, [p % x.type.rank for p in perm], node.dtype)


@dynamic_dims
def emit_concat(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    """tensor.insert_slice each input into an empty result (portable: IREE and upstream both lower it)."""
    axis = node.attrs["axis"] % node.type.rank
    acc, offset = f.empty(node.shape, node.dtype), 0
    for k, (a, x) in enumerate(zip(args, node.inputs)):
        offsets = [offset if i == axis else 0 for i in range(node.type.rank)]
        acc = f.op(
            f"tensor.insert_slice {a} into {acc}[{f.sizes(offsets)}] [{f.sizes(x.shape)}] "
            f"[{', '.join(['1'] * node.type.rank)}] : {_ty(x)} into {_ty(node)}",
            "concat",
        )
        if k + 1 < len(args):
            offset = f.add_sizes(offset, x.shape[axis])
    return acc


@dynamic_dims
def emit_slice(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    x, a = node.inputs[0], node.attrs
    offsets, strides = [0] * x.type.rank, [1] * x.type.rank
    steps = a["steps"] or (1,) * len(a["axes"])
    for axis, start, end, step in zip(a["axes"], a["starts"], a["ends"], steps):
        axis %= x.type.rank
        if not is_static_dim(x.shape[axis]):  # the shape rule allows only the whole of a symbolic axis
            continue
        offsets[axis] = range(*slice(start, end, step).indices(x.shape[axis])).start
        strides[axis] = step
    return f.op(
        f"tensor.extract_slice {args[0]}[{', '.join(map(str, offsets))}] [{f.sizes(node.shape)}] "
        f"[{', '.join(map(str, strides))}] : {_ty(x)} to {_ty(node)}",
        "slice",
    )


@dynamic_dims
def emit_pad(f: FunctionEmitter, node: Node, args: list[str]) -> str:
    pads, x = node.attrs["pads"], node.inputs[0]
    return f.pad(args[0], x.shape, pads[0::2], pads[1::2], node.attrs["value"], node.dtype)


EMITTERS: dict[str, Emitter] = {
    "fused": emit_fused,
    **{op: emit_elementwise for op in SCALAR_BODIES if op != "broadcast_to"},
    "broadcast_to": emit_broadcast_to,
    "dense": emit_dense,
    "matmul": emit_matmul,
    "conv2d": emit_conv2d,
    "max_pool2d": emit_max_pool2d,
    "avg_pool2d": emit_avg_pool2d,
    "global_avg_pool2d": emit_global_avg_pool2d,
    "sum": _emit_reduce("sum"),
    "mean": _emit_reduce("mean"),
    "max": _emit_reduce("max"),
    "min": _emit_reduce("min"),
    "softmax": emit_softmax,
    "log_softmax": emit_softmax,
    "layer_norm": emit_layer_norm,
    "reshape": emit_reshape,
    "transpose": emit_transpose,
    "concat": emit_concat,
    "slice": emit_slice,
    "pad": emit_pad,
    "layout_transform": emit_layout_transform,
}


def unsupported_ops() -> list[str]:
    """Registered IR ops with neither an emitter nor a decomposition (the coverage test keeps this empty)."""
    return sorted(
        op for op in _registered() if emitter_for(op) is None and get_op(op).decompose is None and not is_source(op)
    )


def _registered() -> list[str]:
    from mlc_lab.ir.ops import OPS

    return list(OPS)


assert all(get_op(op).kind in (OpKind.ELEMWISE, OpKind.BROADCAST) for op in SCALAR_BODIES)
