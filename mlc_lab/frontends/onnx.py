"""Import ONNX models: one small converter per ONNX op, like the PyTorch frontend's per aten op.

How it works:

1. `onnx.load` (or a ModelProto you pass), then ONNX's shape inference, so every value has a type.
2. Initializers (the weights) become `constant` nodes named after the initializer; graph inputs that
   are not initializers become graph inputs. Shapes must be static: a symbolic dimension (a dynamic
   batch) is fixed with `input_shapes={"x": (1, 784)}`.
3. Each node goes through `ONNX_OPS[node.op_type]` with its inputs (None for an omitted optional
   input) and its attributes as keyword arguments. An op with no converter fails before anything is
   converted, naming the op and the node.
4. Each converted value is checked against the type ONNX's shape inference computed for it.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from mlc_lab.frontends.torch import FrontendError, UnsupportedOpError
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import OpError

__all__ = ["ONNX_OPS", "OnnxContext", "from_onnx", "supported_ops"]

Converter = Callable[..., Node | list[Node]]


# == the importer =================================================================================
def from_onnx(
    model: str | os.PathLike | onnx.ModelProto,
    name: str | None = None,
    input_shapes: dict[str, Sequence[int]] | None = None,
) -> Graph:
    """Convert an ONNX model (a path or a ModelProto) into a verified Graph."""
    proto = onnx.load(os.fspath(model)) if isinstance(model, (str, os.PathLike)) else model
    proto = shape_inference.infer_shapes(proto)
    graph = proto.graph
    _check_supported(graph)
    cx = OnnxContext(GraphBuilder(name or graph.name or "onnx_model"))
    env: dict[str, Node] = {}
    for init in graph.initializer:
        env[init.name] = cx.b.constant(numpy_helper.to_array(init), name=_clean(init.name))
    for value in graph.input:
        if value.name not in env:
            env[value.name] = cx.b.input(_clean(value.name), *_input_type(value, input_shapes or {}))
    types = {v.name: v for v in [*graph.value_info, *graph.output]}
    for node in graph.node:
        _convert_node(cx, node, env, types)
    outputs = [env[v.name] for v in graph.output]
    return cx.b.build(outputs)


def _clean(name: str) -> str:
    """ONNX names may hold '/', ':' and '.'; the IR prints names after '%', so keep them readable."""
    return name.strip("/").replace("/", ".").replace(":", "_") or "v"


def _input_type(value: onnx.ValueInfoProto, shapes: dict[str, Sequence[int]]) -> tuple[tuple[int, ...], str]:
    tensor = value.type.tensor_type
    dtype = _dtype(tensor.elem_type)
    if value.name in shapes:
        return tuple(int(d) for d in shapes[value.name]), dtype
    dims = []
    for d in tensor.shape.dim:
        if not d.HasField("dim_value"):
            raise FrontendError(
                f"input {value.name!r} has a symbolic dimension {d.dim_param or '?'}; shapes must be static: "
                f"pass input_shapes={{{value.name!r}: (...)}}"
            )
        dims.append(d.dim_value)
    return tuple(dims), dtype


def _dtype(elem_type: int) -> str:
    try:
        return np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception as e:  # noqa: BLE001 - onnx raises various errors for unknown element types
        raise FrontendError(f"unsupported ONNX element type {elem_type}") from e


def _describe(node: onnx.NodeProto) -> str:
    return f"ONNX {node.op_type} (node {node.name or '<unnamed>'!r}, output {node.output[0]!r})"


def _convert_node(cx: OnnxContext, node: onnx.NodeProto, env: dict[str, Node], types: dict) -> None:
    inputs = [env[i] if i else None for i in node.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    cx.onnx_node = node
    try:
        result = ONNX_OPS[node.op_type](cx, *inputs, **attrs)
    except (OpError, FrontendError, TypeError) as e:
        raise FrontendError(f"{_describe(node)}: {e}") from e
    results = result if isinstance(result, list) else [result]
    for out_name, value in zip(node.output, results):
        if out_name in types:
            _check_type(node, out_name, value, types[out_name])
        env[out_name] = value


def _check_type(node: onnx.NodeProto, out_name: str, value: Node, info: onnx.ValueInfoProto) -> None:
    tensor = info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if tensor.HasField("shape") and None not in dims and tuple(dims) != value.shape:
        raise FrontendError(
            f"{_describe(node)}: the converter produced shape {list(value.shape)} for {out_name!r} but ONNX "
            f"inferred {dims} (a bug in the converter)"
        )


def supported_ops() -> list[str]:
    return sorted(ONNX_OPS)


def _check_supported(graph: onnx.GraphProto) -> None:
    for node in graph.node:
        if node.op_type not in ONNX_OPS or (node.domain not in ("", "ai.onnx")):
            listing = textwrap.fill(", ".join(supported_ops()), width=110, initial_indent="  ", subsequent_indent="  ")
            raise UnsupportedOpError(
                f"{_describe(node)} has no converter in mlc_lab.frontends.onnx.\nSupported ONNX ops:\n{listing}\n"
                "Add a converter to ONNX_OPS, or export the model without this op."
            )


# == what a converter sees ========================================================================
class OnnxContext:
    """The builder plus the ONNX node being converted (its name names the new IR nodes)."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder
        self.onnx_node: onnx.NodeProto | None = None

    def op(self, op: str, *inputs: Node, **attrs: Any) -> Node:
        label = _clean(self.onnx_node.name or self.onnx_node.output[0])
        return self.b.op(op, *inputs, name=label, **attrs)

    def const(self, value: Any, dtype: str) -> Node:
        return self.b.constant(np.asarray(value, dtype=dtype), name=_clean(self.onnx_node.output[0]) + ".const")

    def value(self, node: Node | None, what: str) -> np.ndarray:
        """A compile-time constant input (a Reshape's shape, a Slice's starts): ONNX passes them as tensors."""
        if node is None or node.op != "constant":
            raise FrontendError(f"{what} must be a constant (an initializer or a Constant node)")
        return np.asarray(node.attrs["value"])


def _pads(pads: Sequence[int] | None, rank: int = 2) -> tuple[int, ...]:
    """ONNX pads are (begin_h, begin_w, end_h, end_w): the IR's (top, left, bottom, right)."""
    return tuple(pads) if pads else (0,) * (2 * rank)


def _auto_pad(mode: str, x: Node, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int]):
    if mode in ("NOTSET", "VALID"):
        return None if mode == "NOTSET" else (0, 0, 0, 0)
    begins, ends = [], []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - begins[-1])
    return (*begins, *ends)


# == converters ===================================================================================
def conv(cx, x, w, b=None, auto_pad="NOTSET", dilations=(1, 1), group=1, kernel_shape=None, pads=None, strides=(1, 1)):
    if x.type.rank != 4:
        raise FrontendError(f"only 2-D convolutions are supported, got a rank-{x.type.rank} input")
    padding = _auto_pad(auto_pad, x, w.shape[2:], strides, dilations) or _pads(pads)
    y = cx.op("conv2d", x, w, strides=tuple(strides), padding=padding, dilation=tuple(dilations), groups=group)
    return y if b is None else cx.op("bias_add", y, b, axis=1)


def gemm(cx, a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    """alpha * A' @ B' + beta * C. transB=1 is nn.Linear's layout, which `dense` takes as is."""
    if transA:
        a = cx.op("transpose", a, perm=(1, 0))
    y = cx.op("dense", a, b) if transB else cx.op("matmul", a, b)
    if alpha != 1.0:
        y = cx.op("mul", y, cx.const(alpha, y.dtype))
    if c is None:
        return y
    if beta != 1.0:
        c = cx.op("mul", c, cx.const(beta, c.dtype))
    return cx.op("bias_add", y, c, axis=-1) if c.type.rank == 1 else cx.op("add", y, c)


def batch_norm(cx, x, scale, bias, mean, var, epsilon=1e-5, momentum=0.9, training_mode=0):
    if training_mode:
        raise FrontendError("BatchNormalization in training mode is not supported (inference only)")
    return cx.op("batch_norm", x, scale, bias, mean, var, eps=epsilon, axis=1)


def layer_norm(cx, x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1):
    bias = bias if bias is not None else cx.const(np.zeros(scale.shape), scale.dtype)
    return cx.op("layer_norm", x, scale, bias, eps=epsilon, axis=axis)


def _pool(op: str) -> Converter:
    def convert(
        cx,
        x,
        kernel_shape,
        strides=None,
        pads=None,
        auto_pad="NOTSET",
        ceil_mode=0,
        dilations=None,
        count_include_pad=0,
        storage_order=0,
    ):
        strides = tuple(strides) if strides else tuple(kernel_shape)
        padding = _auto_pad(auto_pad, x, kernel_shape, strides, dilations or (1, 1)) or _pads(pads)
        attrs = dict(kernel=tuple(kernel_shape), strides=strides, padding=padding, ceil_mode=bool(ceil_mode))
        if op == "max_pool2d":
            attrs["dilation"] = tuple(dilations or (1, 1))
        else:
            attrs["count_include_pad"] = bool(count_include_pad)
        return cx.op(op, x, **attrs)

    convert.__name__ = op
    return convert


def global_average_pool(cx, x):
    """GlobalAveragePool keeps the 1x1 spatial axes; the IR's global_avg_pool2d drops them."""
    n, c = x.shape[:2]
    return cx.op("reshape", cx.op("global_avg_pool2d", x), shape=(n, c, 1, 1))


def _unary(op: str) -> Converter:
    def convert(cx, x):
        return cx.op(op, x)

    convert.__name__ = op
    return convert


def _binary(op: str) -> Converter:
    def convert(cx, a, b):
        return cx.op(op, a, b)

    convert.__name__ = op
    return convert


def gelu(cx, x, approximate="none"):
    return cx.op("gelu", x, approximate=approximate)


def clip(cx, x, min=None, max=None):  # noqa: A002 - ONNX's names
    lo = None if min is None else float(cx.value(min, "Clip's min"))
    hi = None if max is None else float(cx.value(max, "Clip's max"))
    return cx.op("clip", x, min=lo, max=hi)


def softmax(cx, x, axis=-1):
    return cx.op("softmax", x, axis=axis)


def log_softmax(cx, x, axis=-1):
    return cx.op("log_softmax", x, axis=axis)


def identity(cx, x):
    return x


def dropout(cx, x, ratio=None, training_mode=None, seed=None):
    return x


def flatten(cx, x, axis=1):
    axis %= max(x.type.rank, 1)
    return cx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def reshape(cx, x, shape, allowzero=0):
    """ONNX's 0 copies the input's dimension; -1 is inferred."""
    target = [int(s) for s in cx.value(shape, "Reshape's shape")]
    target = [x.shape[i] if s == 0 and not allowzero else s for i, s in enumerate(target)]
    if -1 in target:
        known = math.prod(s for s in target if s != -1)
        target[target.index(-1)] = x.type.numel // known
    return cx.op("reshape", x, shape=tuple(target))


def transpose(cx, x, perm=None):
    return cx.op("transpose", x, perm=tuple(perm) if perm else tuple(reversed(range(x.type.rank))))


def concat(cx, *tensors, axis):
    return cx.op("concat", *tensors, axis=axis)


def constant(cx, value=None, **_: Any):
    if value is None:
        raise FrontendError("only Constant nodes with a tensor `value` are supported")
    return cx.b.constant(numpy_helper.to_array(value), name=_clean(cx.onnx_node.output[0]))


def _reduce(op: str) -> Converter:
    def convert(cx, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        if axes is not None and not isinstance(axes, (list, tuple)):  # opset 18: axes is an input
            axes = cx.value(axes, f"{op}'s axes").tolist()
        return cx.op(op, x, axes=tuple(axes) if axes else None, keepdims=bool(keepdims))

    convert.__name__ = op
    return convert


def unsqueeze(cx, x, axes=None):
    axes = axes if isinstance(axes, (list, tuple)) else cx.value(axes, "Unsqueeze's axes").tolist()
    shape = list(x.shape)
    for a in sorted(a % (x.type.rank + len(axes)) for a in axes):
        shape.insert(a, 1)
    return cx.op("reshape", x, shape=tuple(shape))


def squeeze(cx, x, axes=None):
    if axes is not None and not isinstance(axes, (list, tuple)):
        axes = cx.value(axes, "Squeeze's axes").tolist()
    drop = {a % x.type.rank for a in axes} if axes else {i for i, s in enumerate(x.shape) if s == 1}
    return cx.op("reshape", x, shape=tuple(s for i, s in enumerate(x.shape) if i not in drop))


ONNX_OPS: dict[str, Converter] = {
    "Conv": conv,
    "Gemm": gemm,
    "MatMul": _binary("matmul"),
    "BatchNormalization": batch_norm,
    "LayerNormalization": layer_norm,
    "MaxPool": _pool("max_pool2d"),
    "AveragePool": _pool("avg_pool2d"),
    "GlobalAveragePool": global_average_pool,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Exp": _unary("exp"),
    "Log": _unary("log"),
    "Sqrt": _unary("sqrt"),
    "Erf": _unary("erf"),
    "Neg": _unary("neg"),
    "Abs": _unary("abs"),
    "Gelu": gelu,
    "Clip": clip,
    "Add": _binary("add"),
    "Sub": _binary("sub"),
    "Mul": _binary("mul"),
    "Div": _binary("div"),
    "Pow": _binary("pow"),
    "Max": _binary("maximum"),
    "Min": _binary("minimum"),
    "Softmax": softmax,
    "LogSoftmax": log_softmax,
    "Identity": identity,
    "Dropout": dropout,
    "Flatten": flatten,
    "Reshape": reshape,
    "Transpose": transpose,
    "Concat": concat,
    "Constant": constant,
    "ReduceMean": _reduce("mean"),
    "ReduceSum": _reduce("sum"),
    "ReduceMax": _reduce("max"),
    "Unsqueeze": unsqueeze,
    "Squeeze": squeeze,
}
