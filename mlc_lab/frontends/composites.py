"""Layers the IR has no single op for, written exactly in ops every backend already runs.

The ONNX and PyTorch frontends both meet them (Conv over 1 or 3 spatial axes, transposed convolution,
Resize / interpolate, group and instance normalisation, flip, roll), so each is written once, here,
against a converter context (`cx.op`, `cx.const`, `cx.value`; see `mlc_lab.frontends.base`):

- a 1-d window is a 2-D one of height 1 (`as_2d`);
- a 3-d window is a sum (conv, average) or maximum (max pool) over its depth taps of 2-D windows
  over strided depth slices folded into the batch (`depth_taps`);
- a transposed convolution is a convolution of the zero-interleaved input with the kernel flipped in
  space and its channels swapped per group (a constant computed at import);
- resizing multiplies each resized axis by a constant interpolation matrix (`resize_matrix`);
- flip reads positions n-1 ... 0 with `take`; roll concatenates two slices.

Padding is given as the ONNX frontend spells it: (begin per spatial axis..., end per spatial axis...).
Nothing here imports a framework.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from mlc_lab.frontends.base import ConverterContext
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError
from mlc_lab.ir.graph import Node

__all__ = [
    "chain",
    "conv_nd",
    "conv_transpose_nd",
    "flip",
    "group_norm",
    "pool_nd",
    "resize_axes",
    "resize_matrix",
    "roll",
    "spatial_dims",
]


def chain(cx: ConverterContext, op: str, values: Sequence[Node]) -> Node:
    """values[0] op values[1] op ... (a binary op folded left)."""
    y = values[0]
    for v in values[1:]:
        y = cx.op(op, y, v)
    return y


def spatial_dims(x: Node, op: str) -> int:
    """The number of spatial axes (1, 2 or 3) of an (N, C, spatial...) input."""
    if x.type.rank not in (3, 4, 5):
        raise UnsupportedOpError(
            f"{op} over {x.type.rank - 2} spatial axes is not supported (1-d, 2-d and 3-d windows are): "
            f"input shape {list(x.shape)}"
        )
    return x.type.rank - 2


# == windows over 1, 2 or 3 spatial axes ==========================================================
def as_2d(cx: ConverterContext, x: Node) -> Node:
    """(N, C, L) -> (N, C, 1, L): a 1-d window is a 2-D one of height 1."""
    return cx.op("reshape", x, shape=(*x.shape[:2], 1, x.shape[2]))


def from_2d(cx: ConverterContext, y: Node) -> Node:
    return cx.op("reshape", y, shape=(*y.shape[:2], y.shape[3]))


def depth_taps(
    cx: ConverterContext, x: Node, taps: int, stride: int, dilation: int, out_depth: int, window_2d: Callable
) -> list[Node]:
    """A 3-d window as 2-D ones: tap k reads depth slices k*dilation + i*stride (i < out_depth) of
    (N, C, D, H, W), folded into the batch, and `window_2d(slices, k)` computes over (H, W); each result
    comes back as (N, C', out_depth, H', W')."""
    n, c, _, h, w = x.shape
    results = []
    for k in range(taps):
        start = k * dilation
        xs = cx.op(
            "slice", x, axes=(2,), starts=(start,), ends=(start + (out_depth - 1) * stride + 1,), steps=(stride,)
        )
        xs = cx.op("reshape", cx.op("transpose", xs, perm=(0, 2, 1, 3, 4)), shape=(n * out_depth, c, h, w))
        y = window_2d(xs, k)
        y = cx.op("reshape", y, shape=(n, out_depth, *y.shape[1:]))
        results.append(cx.op("transpose", y, perm=(0, 2, 1, 3, 4)))
    return results


def _pad_depth(cx: ConverterContext, x: Node, begin: int, end: int, fill: float) -> Node:
    if not begin and not end:
        return x
    return cx.op("pad", x, pads=(0, 0, 0, 0, begin, end, 0, 0, 0, 0), value=fill)


def conv_nd(
    cx: ConverterContext,
    x: Node,
    w: Node,
    strides: Sequence[int],
    padding: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> Node:
    """Convolution (no bias) over the 1, 2 or 3 spatial axes of x; padding (begins..., ends...)."""
    n = len(strides)
    if n == 2:
        return cx.op("conv2d", x, w, strides=strides, padding=padding, dilation=dilations, groups=groups)
    if n == 1:
        w2 = cx.op("reshape", w, shape=(*w.shape[:2], 1, w.shape[2]))
        y = cx.op(
            "conv2d",
            as_2d(cx, x),
            w2,
            strides=(1, strides[0]),
            padding=(0, padding[0], 0, padding[1]),
            dilation=(1, dilations[0]),
            groups=groups,
        )
        return from_2d(cx, y)
    x = _pad_depth(cx, x, padding[0], padding[3], 0.0)
    kd = w.shape[2]
    out_depth = (x.shape[2] - dilations[0] * (kd - 1) - 1) // strides[0] + 1
    if out_depth < 1:
        raise FrontendError(f"the kernel {list(w.shape[2:])} is larger than the padded input {list(x.shape[2:])}")
    pad_hw = (padding[1], padding[2], padding[4], padding[5])

    def tap(xs: Node, k: int) -> Node:
        wk = cx.op("slice", w, axes=(2,), starts=(k,), ends=(k + 1,))
        wk = cx.op("reshape", wk, shape=(*w.shape[:2], *w.shape[3:]))
        return cx.op("conv2d", xs, wk, strides=strides[1:], padding=pad_hw, dilation=dilations[1:], groups=groups)

    return chain(cx, "add", depth_taps(cx, x, kd, strides[0], dilations[0], out_depth, tap))


def pool_nd(
    cx: ConverterContext,
    x: Node,
    op: str,
    kernel: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[int],
    ceil_mode: bool,
    dilations: Sequence[int] | None,
    **attrs,
) -> Node:
    """A 1-d, 2-d or 3-d pooling window through the IR's 2-D `op` (max_pool2d or avg_pool2d)."""
    n = len(kernel)
    if dilations is not None:
        attrs["dilation"] = tuple(dilations[-2:]) if n > 1 else (1, dilations[0])
    if n == 2:
        return cx.op(op, x, kernel=kernel, strides=strides, padding=padding, ceil_mode=bool(ceil_mode), **attrs)
    if n == 1:
        y = cx.op(
            op,
            as_2d(cx, x),
            kernel=(1, kernel[0]),
            strides=(1, strides[0]),
            padding=(0, padding[0], 0, padding[1]),
            ceil_mode=bool(ceil_mode),
            **attrs,
        )
        return from_2d(cx, y)
    if ceil_mode:
        raise UnsupportedOpError("3-d pooling with ceil_mode is not supported")
    average = op == "avg_pool2d"
    if average and (padding[0] or padding[3]) and not attrs["count_include_pad"]:
        raise UnsupportedOpError("3-d average pooling with depth padding and count_include_pad off is not supported")
    dd = dilations[0] if dilations is not None else 1
    x = _pad_depth(cx, x, padding[0], padding[3], 0.0 if average else -np.inf)
    out_depth = (x.shape[2] - dd * (kernel[0] - 1) - 1) // strides[0] + 1
    if out_depth < 1:
        raise FrontendError(f"the window {list(kernel)} is larger than the padded input {list(x.shape[2:])}")
    pad_hw = (padding[1], padding[2], padding[4], padding[5])

    def tap(xs: Node, k: int) -> Node:
        return cx.op(op, xs, kernel=kernel[1:], strides=strides[1:], padding=pad_hw, ceil_mode=False, **attrs)

    taps = depth_taps(cx, x, kernel[0], strides[0], dd, out_depth, tap)
    if not average:
        return chain(cx, "maximum", taps)
    return cx.op("div", chain(cx, "add", taps), cx.const(kernel[0], x.dtype))


# == transposed convolution =======================================================================
def conv_transpose_nd(
    cx: ConverterContext,
    x: Node,
    w: Node,
    strides: Sequence[int],
    padding: Sequence[int],
    dilations: Sequence[int],
    output_padding: Sequence[int],
    groups: int,
) -> Node:
    """The gradient of a strided convolution (no bias), as a convolution: insert stride - 1 zeros between
    input elements, pad by dilation * (kernel - 1) - padding on each side (+ output_padding at the end),
    and convolve with the weight (C, O / groups, k...) flipped in space and its in/out channels swapped
    per group. The weight must be a constant: its flipped copy is computed at import."""
    n = len(strides)
    if n == 3:
        raise UnsupportedOpError("3-d transposed convolution is not supported (1-d and 2-d are)")
    kernel = w.shape[2:]
    weight = cx.value(w, "the transposed convolution's weight")
    c, og = weight.shape[:2]
    flipped = weight.reshape(groups, c // groups, og, *kernel).swapaxes(1, 2).reshape(groups * og, c // groups, *kernel)
    flipped = np.ascontiguousarray(np.flip(flipped, axis=tuple(range(2, 2 + n))))
    strides, dilations, extra = tuple(strides), tuple(dilations), tuple(output_padding)
    if n == 1:
        x, flipped = as_2d(cx, x), flipped[:, :, None, :]
        strides, dilations, extra = (1, *strides), (1, *dilations), (0, *extra)
        padding = (0, padding[0], 0, padding[1])
        kernel = (1, *kernel)
    y = _insert_zeros(cx, x, strides)
    conv_pads = []
    for axis in range(2):
        full = dilations[axis] * (kernel[axis] - 1)
        conv_pads.append((full - padding[axis], full - padding[axis + 2] + extra[axis]))
    if any(p < 0 for pair in conv_pads for p in pair):
        crop = [(max(-lo, 0), max(-hi, 0)) for lo, hi in conv_pads]
        y = cx.op(
            "slice",
            y,
            axes=(2, 3),
            starts=(crop[0][0], crop[1][0]),
            ends=(y.shape[2] - crop[0][1], y.shape[3] - crop[1][1]),
        )
        conv_pads = [(max(lo, 0), max(hi, 0)) for lo, hi in conv_pads]
    (top, bottom), (left, right) = conv_pads
    kernel_node = cx.b.constant(flipped, name=cx.const_name("weight"))
    y = cx.op(
        "conv2d", y, kernel_node, strides=(1, 1), padding=(top, left, bottom, right), dilation=dilations, groups=groups
    )
    return from_2d(cx, y) if n == 1 else y


def _insert_zeros(cx: ConverterContext, x: Node, strides: Sequence[int]) -> Node:
    """(N, C, H, W) -> (N, C, (H-1)*sh + 1, (W-1)*sw + 1) with the elements stride apart, zeros between."""
    sh, sw = strides
    if sh == sw == 1:
        return x
    n, c, h, w = x.shape
    y = cx.op("reshape", x, shape=(n, c, h, 1, w, 1))
    y = cx.op("pad", y, pads=(0, 0, 0, 0, 0, 0, 0, sh - 1, 0, 0, 0, sw - 1), value=0.0)
    y = cx.op("reshape", y, shape=(n, c, h * sh, w * sw))
    return cx.op("slice", y, axes=(2, 3), starts=(0, 0), ends=((h - 1) * sh + 1, (w - 1) * sw + 1))


# == resizing =====================================================================================
def resize_matrix(in_size: int, out_size: int, scale: float, mode: str, coordinate: str, nearest: str) -> np.ndarray:
    """The (out, in) matrix one resized axis multiplies by: one-hot rows (nearest) or two weights (linear).

    `coordinate` and `nearest` are ONNX Resize's coordinate_transformation_mode and nearest_mode;
    PyTorch's interpolate is "asymmetric" + "floor" (nearest), "half_pixel" or "align_corners" (linear).
    """
    x = np.arange(out_size, dtype=np.float64)
    if coordinate == "half_pixel":
        src = (x + 0.5) / scale - 0.5
    elif coordinate == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        centre = in_size / 2
        src = centre * (1 - adjustment) + (x + 0.5) / scale - 0.5
    elif coordinate == "pytorch_half_pixel":
        src = (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    elif coordinate == "align_corners":
        src = x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    elif coordinate == "asymmetric":
        src = x / scale
    else:
        raise UnsupportedOpError(f"Resize coordinate_transformation_mode {coordinate!r} is not supported")
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    if mode == "nearest":
        rounding = {
            "round_prefer_floor": lambda v: np.where(v == np.floor(v) + 0.5, np.floor(v), np.round(v)),
            "round_prefer_ceil": lambda v: np.where(v == np.floor(v) + 0.5, np.ceil(v), np.round(v)),
            "floor": np.floor,
            "ceil": np.ceil,
        }
        if nearest not in rounding:
            raise FrontendError(f"Resize nearest_mode {nearest!r} is not one of {sorted(rounding)}")
        index = np.clip(rounding[nearest](src), 0, in_size - 1).astype(np.int64)
        matrix[rows, index] = 1.0
        return matrix
    src = np.clip(src, 0, in_size - 1)
    low = np.floor(src).astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    weight = src - low
    np.add.at(matrix, (rows, low), 1 - weight)
    np.add.at(matrix, (rows, high), weight)
    return matrix


def resize_axes(
    cx: ConverterContext,
    x: Node,
    sizes: Sequence[int],
    scales: Sequence[float],
    mode: str,
    coordinate: str,
    nearest: str,
) -> Node:
    """Resize each axis whose size changes (or whose scale is not 1) by a constant interpolation matrix."""
    if mode not in ("nearest", "linear"):
        raise UnsupportedOpError(f"resize mode {mode!r} is not supported (nearest and linear are)")
    if np.dtype(x.dtype).kind != "f":
        raise UnsupportedOpError(f"resizing {x.dtype} data is not supported (floating-point only)")
    y = x
    for axis, (size, out, scale) in enumerate(zip(x.shape, sizes, scales)):
        if out == size and scale == 1:
            continue
        matrix = resize_matrix(size, out, scale, mode, coordinate, nearest).astype(x.dtype)
        last = y.type.rank - 1
        perm = tuple(i for i in range(y.type.rank) if i != axis) + (axis,)
        moved = cx.op("transpose", y, perm=perm) if axis != last else y
        resized = cx.op("matmul", moved, cx.const(matrix.T, x.dtype, name=f"resize{axis}"))
        y = cx.op("transpose", resized, perm=tuple(int(i) for i in np.argsort(perm))) if axis != last else resized
    return y


# == normalisation ================================================================================
def group_norm(cx: ConverterContext, x: Node, groups: int, scale: Node | None, bias: Node | None, eps: float) -> Node:
    """(x - mean) / sqrt(var + eps) * scale + bias, statistics per sample over each group of C / groups
    channels and all spatial axes (groups = C: instance normalisation); scale and bias are (C,) or None."""
    if x.type.rank < 2:
        raise FrontendError(f"group normalisation needs an (N, C, ...) input, got shape {list(x.shape)}")
    n, c = x.shape[:2]
    if groups < 1 or c % groups:
        raise FrontendError(f"{c} channels cannot be split into {groups} groups")
    rest = math.prod(x.shape[2:])
    grouped = x if groups == c and x.type.rank == 3 else cx.op("reshape", x, shape=(n, groups, c // groups * rest))
    centred = cx.op("sub", grouped, cx.op("mean", grouped, axes=(2,), keepdims=True))
    var = cx.op("mean", cx.op("mul", centred, centred), axes=(2,), keepdims=True)
    normal = cx.op("mul", centred, cx.op("rsqrt", cx.op("add", var, cx.const(eps, x.dtype, "eps"))))
    y = normal if grouped is x else cx.op("reshape", normal, shape=x.shape)
    per_channel = (c, *(1,) * (x.type.rank - 2))
    if scale is not None:
        y = cx.op("mul", y, cx.op("reshape", scale, shape=per_channel))
    return y if bias is None else cx.op("bias_add", y, bias, axis=1)


# == reordering ===================================================================================
def flip(cx: ConverterContext, x: Node, axes: Sequence[int]) -> Node:
    """Reverse the order along each axis: read positions n-1, ..., 0 with `take`."""
    y = x
    for axis in sorted({a % x.type.rank for a in axes}):
        size = x.shape[axis]
        if size > 1:
            y = cx.op("take", y, cx.const(np.arange(size - 1, -1, -1), "int64", f"flip{axis}"), axis=axis)
    return y


def roll(cx: ConverterContext, x: Node, shifts: Sequence[int], axes: Sequence[int]) -> Node:
    """Shift elements along each axis, wrapping around: the last `shift` elements move to the front."""
    if len(shifts) != len(axes):
        raise FrontendError(f"roll needs one shift per axis, got shifts {list(shifts)} and axes {list(axes)}")
    y = x
    for shift, axis in zip(shifts, axes):
        axis %= x.type.rank
        size = x.shape[axis]
        shift = shift % size if size else 0
        if shift:
            tail = cx.op("slice", y, axes=(axis,), starts=(size - shift,), ends=(size,))
            head = cx.op("slice", y, axes=(axis,), starts=(0,), ends=(size - shift,))
            y = cx.op("concat", tail, head, axis=axis)
    return y
