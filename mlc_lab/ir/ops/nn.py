"""Neural-network ops: convolution, pooling, normalisation, softmax.

Spatial ops take a `data_layout` attribute ("NCHW", "NHWC", or blocked "NCHW8c"); their type rules and
reference kernels convert to NCHW, do the work there, and convert back, so every layout has exactly
the same meaning.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mlc_lab.ir import layout as L
from mlc_lab.ir.ops.registry import OpError, OpKind, Trait, norm_axis, register, require_float, same_dtype
from mlc_lab.ir.types import TensorType


# -- attribute canonicalisation -------------------------------------------------------------------
def _pair(op: str, name: str, value) -> tuple[int, int]:
    v = (value, value) if isinstance(value, int) else tuple(value)
    if len(v) == 1:
        v = (v[0], v[0])
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        raise OpError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return v


def _padding4(op: str, value) -> tuple[int, int, int, int]:
    """(top, left, bottom, right); an int or (pad_h, pad_w) pads both sides equally."""
    if isinstance(value, int):
        value = (value,) * 4
    value = tuple(value)
    if len(value) == 2:
        value = (value[0], value[1], value[0], value[1])
    if len(value) != 4 or not all(isinstance(i, int) and i >= 0 for i in value):
        raise OpError(f"{op}: padding must be an int, (h, w) or (top, left, bottom, right) >= 0, got {value!r}")
    return value


def _spatial_attrs(op: str):
    def canon(attrs):
        out = dict(attrs)
        for key in ("strides", "dilation", "kernel"):
            if key in out and out[key] is not None:
                out[key] = _pair(op, key, out[key])
                if min(out[key]) <= 0:
                    raise OpError(f"{op}: {key} must be positive, got {list(out[key])}")
        if "padding" in out:
            out["padding"] = _padding4(op, out["padding"])
        if "data_layout" in out:
            _check_layout(op, out["data_layout"], "NCHW")
        if "kernel_layout" in out:
            _check_layout(op, out["kernel_layout"], "OIHW")
        if out.get("groups", 1) < 1:
            raise OpError(f"{op}: groups must be >= 1, got {out['groups']}")
        return out

    return canon


def _check_layout(op: str, layout: str, canonical: str) -> None:
    try:
        ok = sorted(L.primal_axes(layout)) == sorted(canonical)
    except L.LayoutError as e:
        raise OpError(f"{op}: {e}") from None
    if not ok:
        raise OpError(f"{op}: layout {layout!r} is not a layout of {canonical}")


def _nchw_shape(op: str, t: TensorType, data_layout: str) -> tuple[int, int, int, int]:
    try:
        return L.canonical_shape(t.shape, "NCHW", data_layout)
    except L.LayoutError as e:
        raise OpError(f"{op}: input {list(t.shape)}: {e}") from None


def _out_type(op: str, nchw: tuple[int, ...], dtype: str, data_layout: str) -> TensorType:
    try:
        return TensorType(L.layout_shape(nchw, "NCHW", data_layout), dtype)
    except L.LayoutError as e:
        raise OpError(f"{op}: output {list(nchw)}: {e}") from None


def _window_out(op: str, size: int, k: int, s: int, d: int, lo: int, hi: int, ceil: bool = False) -> int:
    span = d * (k - 1) + 1
    if size + lo + hi < span:
        raise OpError(f"{op}: window {span} is larger than the padded input {size + lo + hi}")
    num = size + lo + hi - span
    out = (math.ceil(num / s) if ceil else num // s) + 1
    if ceil and (out - 1) * s >= size + lo:  # the last window must start inside the input or left padding
        out -= 1
    return out


# -- conv2d ---------------------------------------------------------------------------------------
def _conv2d_type(types, attrs):
    x, w = types
    dtype = same_dtype("conv2d", types)
    n, c, h, wd = _nchw_shape("conv2d", x, attrs["data_layout"])
    try:
        o, i, kh, kw = L.canonical_shape(w.shape, "OIHW", attrs["kernel_layout"])
    except L.LayoutError as e:
        raise OpError(f"conv2d: weight {list(w.shape)}: {e}") from None
    g = attrs["groups"]
    if c != i * g:
        raise OpError(f"conv2d: input has {c} channels but weight {list(w.shape)} expects {i} x {g} groups = {i * g}")
    if o % g:
        raise OpError(f"conv2d: {o} output channels are not divisible by groups={g}")
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = attrs["strides"], attrs["dilation"], attrs["padding"]
    oh = _window_out("conv2d", h, kh, sh, dh, pt, pb)
    ow = _window_out("conv2d", wd, kw, sw, dw, pl, pr)
    return _out_type("conv2d", (n, o, oh, ow), dtype, attrs["data_layout"])


def _widen(x) -> bool:
    """Accumulate a float32/float16 conv in float64: BLAS rounds output channels differently (FMA in its
    main kernel, not in its edge kernels; which channels fall on an edge depends on the CPU's kernel),
    so channels that are equal in exact arithmetic came out unequal by an ulp. Logits of ~1e9 (ONNX's
    constant-weight "light" networks) then made softmax pick 24 of 1000 on an AVX2 machine instead of a
    uniform 0.001. In float64 those ulps stay far below float32's rounding of the result."""
    return x.dtype in (np.float32, np.float16)


def conv2d_nchw(x, w, strides=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """Reference NCHW/OIHW convolution: an im2col window view contracted with the weights (see `_widen`)."""
    (sh, sw), (dh, dw), (pt, pl, pb, pr) = strides, dilation, padding
    o, i, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # N, C, OH, OW, KH, KW
    outs = []
    og = o // groups
    for g in range(groups):
        part = win[:, g * i : (g + 1) * i]
        wg = w[g * og : (g + 1) * og]
        part, wg = (a.astype(np.float64) if _widen(x) else a for a in (part, wg))
        outs.append(np.tensordot(part, wg, axes=([1, 4, 5], [1, 2, 3])))  # N, OH, OW, O/g
    return np.concatenate(outs, axis=-1).transpose(0, 3, 1, 2).astype(x.dtype)


def _conv2d_flops(inputs, output, attrs) -> int:
    """A multiply-add (2 FLOPs) per output element and weight of one group: C/groups * KH * KW."""
    _, i, kh, kw = L.canonical_shape(inputs[1].shape, "OIHW", attrs["kernel_layout"])
    return 2 * output.numel * i * kh * kw


def _conv2d(x, w, strides, padding, dilation, groups, data_layout, kernel_layout):
    xc = L.from_layout(x, "NCHW", data_layout)
    wc = L.from_layout(w, "OIHW", kernel_layout)
    y = conv2d_nchw(xc, wc, strides, padding, dilation, groups)
    return L.to_layout(y, "NCHW", data_layout)


register(
    "conv2d",
    OpKind.OUT_FUSABLE,
    _conv2d_type,
    _conv2d,
    attrs={
        "strides": (1, 1),
        "padding": (0, 0, 0, 0),
        "dilation": (1, 1),
        "groups": 1,
        "data_layout": "NCHW",
        "kernel_layout": "OIHW",
    },
    arity=(2, 2),
    canonicalize=_spatial_attrs("conv2d"),
    traits=[Trait.GEMM, Trait.LAYOUT_SENSITIVE],
    flops=_conv2d_flops,
    doc="2-D convolution (cross-correlation, as in PyTorch); bias is a separate bias_add",
)


# -- pooling ----------------------------------------------------------------------------------------
def _pool_canon(op: str):
    base = _spatial_attrs(op)

    def canon(attrs):
        attrs = dict(attrs)
        if attrs.get("strides") is None:
            attrs["strides"] = attrs["kernel"]
        return base(attrs)

    return canon


def _pool_type(op: str):
    def infer(types, attrs):
        (x,) = types
        n, c, h, w = _nchw_shape(op, x, attrs["data_layout"])
        (kh, kw), (sh, sw), (dh, dw) = attrs["kernel"], attrs["strides"], attrs.get("dilation", (1, 1))
        pt, pl, pb, pr = attrs["padding"]
        if max(pt, pb) > kh // 2 or max(pl, pr) > kw // 2:
            raise OpError(f"{op}: padding {list(attrs['padding'])} must be at most half the kernel {[kh, kw]}")
        oh = _window_out(op, h, kh, sh, dh, pt, pb, attrs["ceil_mode"])
        ow = _window_out(op, w, kw, sw, dw, pl, pr, attrs["ceil_mode"])
        return _out_type(op, (n, c, oh, ow), x.dtype, attrs["data_layout"])

    return infer


def _pool_windows(x, kernel, strides, dilation, padding, out_hw, fill):
    """Window view (N, C, OH, OW, KH, KW) over x padded with `fill`, extra padding for ceil_mode."""
    (kh, kw), (sh, sw), (dh, dw), (pt, pl, pb, pr) = kernel, strides, dilation, padding
    oh, ow = out_hw
    need_h = (oh - 1) * sh + dh * (kh - 1) + 1
    need_w = (ow - 1) * sw + dw * (kw - 1) + 1
    eb = max(0, need_h - (x.shape[2] + pt + pb))
    er = max(0, need_w - (x.shape[3] + pl + pr))
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb + eb), (pl, pr + er)), constant_values=fill)
    win = sliding_window_view(xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :oh, :ow]


def _out_hw(op, x_nchw, attrs):
    t = _pool_type(op)([TensorType(x_nchw.shape, x_nchw.dtype.name)], {**attrs, "data_layout": "NCHW"})
    return t.shape[2:]


def _max_pool2d(x, kernel, strides, padding, dilation, ceil_mode, data_layout):
    xc = L.from_layout(x, "NCHW", data_layout)
    attrs = dict(kernel=kernel, strides=strides, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    fill = -np.inf if xc.dtype.kind == "f" else np.iinfo(xc.dtype).min
    win = _pool_windows(xc, kernel, strides, dilation, padding, _out_hw("max_pool2d", xc, attrs), fill)
    return L.to_layout(win.max(axis=(4, 5)).astype(x.dtype), "NCHW", data_layout)


def _avg_pool2d(x, kernel, strides, padding, ceil_mode, count_include_pad, data_layout):
    xc = L.from_layout(x, "NCHW", data_layout)
    attrs = dict(kernel=kernel, strides=strides, padding=padding, ceil_mode=ceil_mode)
    out_hw = _out_hw("avg_pool2d", xc, attrs)
    total = _pool_windows(xc, kernel, strides, (1, 1), padding, out_hw, 0).sum(axis=(4, 5))
    # Divisor: the window's elements inside the input (or inside input + padding): pool a mask the same way.
    h, w = xc.shape[2:]
    pt, pl, pb, pr = padding
    if count_include_pad:
        mask = np.ones((1, 1, h + pt + pb, w + pl + pr))
        count = _pool_windows(mask, kernel, strides, (1, 1), (0, 0, 0, 0), out_hw, 0).sum(axis=(4, 5))
    else:
        count = _pool_windows(np.ones((1, 1, h, w)), kernel, strides, (1, 1), padding, out_hw, 0).sum(axis=(4, 5))
    return L.to_layout((total / count).astype(x.dtype), "NCHW", data_layout)


_SPATIAL = {"padding": (0, 0, 0, 0), "ceil_mode": False, "data_layout": "NCHW"}


def _pool_flops(inputs, output, attrs) -> int:
    """One operation per output element and window element."""
    kh, kw = attrs["kernel"]
    return output.numel * kh * kw


register(
    "max_pool2d",
    OpKind.REDUCTION,
    _pool_type("max_pool2d"),
    _max_pool2d,
    attrs={"kernel": (2, 2), "strides": None, "dilation": (1, 1), **_SPATIAL},
    canonicalize=_pool_canon("max_pool2d"),
    traits=[Trait.LAYOUT_SENSITIVE],
    flops=_pool_flops,
    doc="max over each window; padding counts as -inf",
)
register(
    "avg_pool2d",
    OpKind.REDUCTION,
    _pool_type("avg_pool2d"),
    _avg_pool2d,
    attrs={"kernel": (2, 2), "strides": None, "count_include_pad": True, **_SPATIAL},
    canonicalize=_pool_canon("avg_pool2d"),
    traits=[Trait.LAYOUT_SENSITIVE],
    flops=_pool_flops,
    doc="mean over each window (PyTorch's divisor rules)",
)


def _gap_type(types, attrs):
    (x,) = types
    require_float("global_avg_pool2d", x)
    n, c, _, _ = _nchw_shape("global_avg_pool2d", x, attrs["data_layout"])
    return _out_type("global_avg_pool2d", (n, c, 1, 1), x.dtype, attrs["data_layout"])


def _gap(x, data_layout):
    xc = L.from_layout(x, "NCHW", data_layout)
    return L.to_layout(xc.mean(axis=(2, 3), keepdims=True).astype(x.dtype), "NCHW", data_layout)


register(
    "global_avg_pool2d",
    OpKind.REDUCTION,
    _gap_type,
    _gap,
    attrs={"data_layout": "NCHW"},
    canonicalize=_spatial_attrs("global_avg_pool2d"),
    traits=[Trait.LAYOUT_SENSITIVE],
    doc="mean over H and W, keeping them as size 1",
)


# -- normalisation ----------------------------------------------------------------------------------
def _normalize_flops(inputs, output, attrs) -> int:
    """About five operations per element: the statistics, subtract, scale, shift (or exp, sum, divide)."""
    return 5 * output.numel


def _batch_norm_type(types, attrs):
    x = types[0]
    require_float("batch_norm", x)
    same_dtype("batch_norm", types)
    axis = norm_axis("batch_norm", attrs["axis"], x.rank)
    for t, what in zip(types[1:], ("gamma", "beta", "mean", "var")):
        if t.shape != (x.shape[axis],):
            raise OpError(f"batch_norm: {what} has shape {list(t.shape)}, expected [{x.shape[axis]}] (axis {axis})")
    return x


def _batch_norm(ops, x, gamma, beta, mean, var, eps, axis):
    """(x - mean) * (gamma / sqrt(var + eps)) + beta; the parameters are read along `axis` (CHANNELWISE)."""
    scale = ops.div(gamma, ops.sqrt(ops.add(var, eps)))
    return ops.add(ops.mul(ops.sub(x, mean), scale), beta)


register(
    "batch_norm",
    OpKind.BROADCAST,
    _batch_norm_type,
    None,
    scalar=_batch_norm,
    attrs={"eps": 1e-5, "axis": 1},
    arity=(5, 5),
    traits=[Trait.CHANNELWISE],
    flops=_normalize_flops,
    doc="inference batch norm: (x - mean) / sqrt(var + eps) * gamma + beta, inputs (x, gamma, beta, mean, var)",
)


def _layer_norm_type(types, attrs):
    x, gamma, beta = types
    require_float("layer_norm", x)
    same_dtype("layer_norm", types)
    axis = norm_axis("layer_norm", attrs["axis"], x.rank)
    for t, what in ((gamma, "gamma"), (beta, "beta")):
        if t.shape != x.shape[axis:]:
            raise OpError(f"layer_norm: {what} has shape {list(t.shape)}, expected {list(x.shape[axis:])}")
    return x


def _layer_norm(x, gamma, beta, eps, axis):
    axes = tuple(range(axis % x.ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return ((x - mean) / np.sqrt(var + eps) * gamma + beta).astype(x.dtype)


def _layer_norm_parts(b, x, gamma, beta, eps, axis):
    """mean, the mean of squared deviations, then (x - mean) / sqrt(var + eps) * gamma + beta."""
    rank = len(x.shape)
    axes = tuple(range(axis % rank, rank))
    centered = b.sub(x, b.mean(x, axes=axes, keepdims=True))
    var = b.mean(b.mul(centered, centered), axes=axes, keepdims=True)
    scaled = b.div(centered, b.sqrt(b.add(var, b.constant(np.asarray(eps, x.dtype), name="eps"))))
    return b.add(b.mul(scaled, gamma), beta)


register(
    "layer_norm",
    OpKind.REDUCTION,
    _layer_norm_type,
    _layer_norm,
    decompose=_layer_norm_parts,
    attrs={"eps": 1e-5, "axis": -1},
    arity=(3, 3),
    flops=_normalize_flops,
    doc="normalise over the axes from `axis` to the end, then scale by gamma and shift by beta",
)


def _softmax_type(op):
    def infer(types, attrs):
        require_float(op, types[0])
        norm_axis(op, attrs["axis"], types[0].rank)
        return types[0]

    return infer


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).astype(x.dtype)


def _log_softmax(x, axis):
    s = x - x.max(axis=axis, keepdims=True)
    return (s - np.log(np.exp(s).sum(axis=axis, keepdims=True))).astype(x.dtype)


def _softmax_parts(b, x, axis):
    """exp(x - max) / sum(exp(x - max)) along `axis`."""
    e = b.exp(b.sub(x, b.max(x, axes=axis, keepdims=True)))
    return b.div(e, b.sum(e, axes=axis, keepdims=True))


def _log_softmax_parts(b, x, axis):
    """(x - max) - log(sum(exp(x - max))) along `axis`."""
    shifted = b.sub(x, b.max(x, axes=axis, keepdims=True))
    return b.sub(shifted, b.log(b.sum(b.exp(shifted), axes=axis, keepdims=True)))


register(
    "softmax",
    OpKind.REDUCTION,
    _softmax_type("softmax"),
    _softmax,
    decompose=_softmax_parts,
    attrs={"axis": -1},
    flops=_normalize_flops,
    doc="exp(x) / sum(exp(x))",
)
register(
    "log_softmax",
    OpKind.REDUCTION,
    _softmax_type("log_softmax"),
    _log_softmax,
    decompose=_log_softmax_parts,
    attrs={"axis": -1},
    flops=_normalize_flops,
    doc="log(softmax(x))",
)
