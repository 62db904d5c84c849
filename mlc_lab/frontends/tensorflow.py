"""Import TensorFlow models (a Keras model or a tf.function): one small converter per TF op.

How it works:

1. The model becomes a `tf.function`, traced once for the example inputs' shapes and dtypes
   (`get_concrete_function`): a TF graph of ops like MatMul, BiasAdd, Conv2D, Relu.
2. TensorFlow's variable freezer (the core of `convert_variables_to_constants_v2`) makes every weight
   a `Const` op.
   `Const` ops become `constant` nodes; `Placeholder`s become graph inputs; `Identity`/`NoOp` vanish.
3. Each remaining op goes through `TF_OPS[op.type]`: a short function that emits IR ops (a 1:1 op is
   a `same(...)` entry). Ops with no converter fail before anything is converted, all listed at once.
4. Every converted value is checked against the shape and dtype TensorFlow inferred for it.

Shapes are static: a Keras model or a plain tf.function is traced on the example inputs' shapes; a
graph input left dynamic (a `None` in a tf.function's input_signature) is refused, naming it and the axis.

TensorFlow stores images NHWC and conv kernels HWIO; the IR's conv2d and pools take layouts as
attributes, so they are imported as they are (data_layout="NHWC", kernel_layout="HWIO"), no transposes.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter about CPU features
try:  # torch-mlir's LLVM must load before TensorFlow's, or LLVM aborts (see mlc_lab.codegen.mlir.module)
    import mlc_lab.codegen.mlir.module  # noqa: F401
except ImportError:  # no MLIR backend installed, or TensorFlow already imported: the MLIR backend says so
    pass
if "tensorflow" not in sys.modules and importlib.util.find_spec("triton") is not None:
    import triton  # noqa: F401  (PyTorch's CUDA builds bring Triton; its LLVM must load first too: mlc_lab._deps)

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import (
    _FunctionConverterDataInEager,
    _replace_variables_by_constants,
)

from mlc_lab.frontends.base import Converter, ConverterContext, check_supported, check_value, converting, same
from mlc_lab.frontends.errors import FrontendError
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node

__all__ = ["TF_OPS", "TFContext", "from_tensorflow", "supported_ops"]

#: Op types the walker itself turns into graph inputs and constants (they have no converter).
_SOURCES = frozenset({"Placeholder", "Const"})


# == the importer =================================================================================
def from_tensorflow(model: Any, example_inputs: Any, name: str | None = None) -> Graph:
    """Trace `model` (Keras model or tf.function) on the example inputs' signature; return a verified Graph."""
    inputs = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    specs = [tf.TensorSpec(np.shape(x), tf.as_dtype(np.asarray(x).dtype)) for x in inputs]
    fn = model if hasattr(model, "get_concrete_function") else tf.function(lambda *xs: model(*xs, training=False))
    try:
        graph, input_names, output_names = _freeze(fn.get_concrete_function(*specs))
    except Exception as e:
        raise FrontendError(f"TensorFlow could not trace {type(model).__name__}: {type(e).__name__}: {e}") from e
    return import_graph(graph, input_names, output_names, name)


def _freeze(concrete: Any) -> tuple[tf.Graph, list[str], list[str]]:
    """The concrete function's graph with every variable a Const: (graph, input names, output names).

    What `convert_variables_to_constants_v2` does, without its last step: wrapping the frozen GraphDef
    back into a callable ConcreteFunction, which took most of the import time of a Keras ResNet50
    (12 of 21 s) and is not needed to read the graph. Captured variables are not inputs any more.
    """
    data = _FunctionConverterDataInEager(func=concrete, lower_control_flow=True, aggressive_inlining=False)
    graph_def, converted = _replace_variables_by_constants(converter_data=data)
    captured = {id(concrete.graph.internal_captures[i]) for i in converted}
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    inputs = [t.name for t in concrete.inputs if id(t) not in captured]
    return graph, inputs, [t.name for t in concrete.outputs]


def import_graph(graph: tf.Graph, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None) -> Graph:
    """Convert a frozen TF graph (weights as Const ops) into a Graph, `inputs`/`outputs` as tensor names."""
    ops = graph.get_operations()
    name = name or "tf_model"
    _check_supported(ops, name)
    input_ops = {t.split(":")[0] for t in inputs}
    for op in ops:
        if op.type == "Placeholder" and op.name in input_ops:
            _require_static(op.outputs[0], name)
    cx = TFContext(GraphBuilder(name))
    env: dict[str, Node] = {}
    for op in ops:  # a tf.Graph lists its operations in the order they were created: producers first
        if op.type == "Placeholder" and op.name in input_ops:
            t = op.outputs[0]
            env[t.name] = cx.b.input(op.name, tuple(t.shape.as_list()), t.dtype.as_numpy_dtype().dtype.name)
        elif op.type == "Const":
            env[op.outputs[0].name] = cx.b.constant(tf.make_ndarray(op.get_attr("value")), name=op.name)
        elif op.type == "Placeholder":
            raise FrontendError(f"{_describe(op)} is not one of the graph's inputs {sorted(input_ops)}")
        else:
            _convert_op(cx, op, env)
    return cx.b.build([env[t] for t in outputs])


def _require_static(t: tf.Tensor, name: str) -> None:
    """The IR has static shapes only: a graph input with an unknown (None) dimension is refused by name."""
    fix = (
        "mlc_lab compiles static shapes: give the tf.function a static input_signature, or none at all "
        "(then the example inputs' shapes are used), or freeze the graph with static placeholder shapes"
    )
    if t.shape.rank is None:
        raise FrontendError(f"TF graph {name!r}: input {t.op.name!r} has an unknown rank; {fix}")
    dims = t.shape.as_list()
    for axis, d in enumerate(dims):
        if d is None:
            shape = ", ".join("None" if s is None else str(s) for s in dims)
            raise FrontendError(
                f"TF graph {name!r}: input {t.op.name!r} has a dynamic dimension at axis {axis} "
                f"(shape [{shape}]); {fix}"
            )


def _describe(op: tf.Operation) -> str:
    return f"TF {op.type} (node {op.name!r})"


def _convert_op(cx: TFContext, op: tf.Operation, env: dict[str, Node]) -> None:
    cx.tf_op, cx.label = op, op.name
    with converting(_describe(op)):
        result = TF_OPS[op.type](cx, *(env[t.name] for t in op.inputs))
    if not op.outputs:  # NoOp: control flow only
        return
    out = op.outputs[0]
    shape = out.shape.as_list() if out.shape.rank is not None else None
    check_value(_describe(op), repr(out.name), result, shape, _numpy_dtype(out.dtype), "TensorFlow inferred")
    env[out.name] = result


def _numpy_dtype(dtype: tf.DType) -> str | None:
    """The NumPy name of a TF dtype; None for those NumPy has no name for (resource, variant handles)."""
    try:
        return np.dtype(dtype.as_numpy_dtype).name
    except TypeError:
        return None


def supported_ops() -> list[str]:
    return sorted([*_SOURCES, *TF_OPS])


def _check_supported(ops: Sequence[tf.Operation], name: str) -> None:
    """Fail before converting anything if ops have no converter, listing every one of them."""
    known = set(supported_ops())
    check_supported(
        ops,
        lambda op: None if op.type in known else (f"TF {op.type}", "no converter"),
        lambda op: repr(op.name),
        subject=f"TF graph {name!r}",
        frontend="tensorflow",
        framework="TF",
        table="TF_OPS",
        supported=supported_ops(),
        advice="write the model without these ops",
    )


# == what a converter sees ========================================================================
class TFContext(ConverterContext):
    """The converter context (mlc_lab.frontends.base) plus the TF op being converted: its attributes.

    New IR nodes take the TF op's name.
    """

    def __init__(self, builder: GraphBuilder) -> None:
        super().__init__(builder)
        self.tf_op: tf.Operation | None = None

    def attr(self, key: str, default: Any = None) -> Any:
        try:
            value = self.tf_op.get_attr(key)
        except ValueError:
            return default
        return value.decode() if isinstance(value, bytes) else value

    def op_name(self, op: str) -> str:
        return self.label


def _layout(cx: TFContext) -> str:
    layout = cx.attr("data_format", "NHWC")
    if layout not in ("NHWC", "NCHW"):
        raise FrontendError(f"data_format {layout!r} is not supported")
    return layout


def _spatial(cx: TFContext, key: str) -> tuple[int, int]:
    """TF writes strides/ksize for all four axes; keep the two spatial ones."""
    values = cx.attr(key)
    return (values[1], values[2]) if _layout(cx) == "NHWC" else (values[2], values[3])


def _padding(cx: TFContext, x: Node, kernel: Sequence[int], strides: Sequence[int], dilation: Sequence[int]):
    """SAME pads so the output is ceil(size / stride), the odd pixel at the bottom/right; VALID pads nothing.

    EXPLICIT reads `explicit_paddings`: (before, after) for each of the four axes, in data_format order.
    """
    mode = cx.attr("padding")
    if mode == "VALID":
        return (0, 0, 0, 0)
    if mode == "EXPLICIT":
        pairs = np.reshape(cx.attr("explicit_paddings"), (4, 2))
        (top, bottom), (left, right) = pairs[1:3] if _layout(cx) == "NHWC" else pairs[2:4]
        if pairs[0].any() or (pairs[3] if _layout(cx) == "NHWC" else pairs[1]).any():
            raise FrontendError(f"explicit_paddings {pairs.tolist()} pad the batch or channel axis")
        return (int(top), int(left), int(bottom), int(right))
    if mode != "SAME":
        raise FrontendError(f"padding {mode!r} is not supported (SAME, VALID or EXPLICIT)")
    hw = x.shape[1:3] if _layout(cx) == "NHWC" else x.shape[2:4]
    totals = [
        max((-(-size // s) - 1) * s + d * (k - 1) + 1 - size, 0) for size, k, s, d in zip(hw, kernel, strides, dilation)
    ]
    return (totals[0] // 2, totals[1] // 2, totals[0] - totals[0] // 2, totals[1] - totals[1] // 2)


# == converters ===================================================================================
def conv2d(cx: TFContext, x: Node, w: Node) -> Node:
    """Kernels are HWIO (height, width, in, out); the IR's conv2d takes that layout as an attribute."""
    strides, dilation = _spatial(cx, "strides"), _spatial(cx, "dilations")
    padding = _padding(cx, x, w.shape[:2], strides, dilation)
    return cx.op(
        "conv2d",
        x,
        w,
        strides=strides,
        padding=padding,
        dilation=dilation,
        data_layout=_layout(cx),
        kernel_layout="HWIO",
    )


def depthwise_conv2d(cx: TFContext, x: Node, w: Node) -> Node:
    """A grouped conv2d with one group per input channel.

    TF's filter is [H, W, C, M] (M outputs per channel, output channel c*M + m); as HWIO with I = 1
    and O = C*M that is exactly groups=C, whose group c makes output channels c*M .. c*M + M - 1.
    """
    kh, kw, c, m = w.shape
    strides, dilation = _spatial(cx, "strides"), _spatial(cx, "dilations")
    padding = _padding(cx, x, (kh, kw), strides, dilation)
    kernel = cx.op("reshape", w, shape=(kh, kw, 1, c * m))
    return cx.op(
        "conv2d",
        x,
        kernel,
        strides=strides,
        padding=padding,
        dilation=dilation,
        groups=c,
        data_layout=_layout(cx),
        kernel_layout="HWIO",
    )


def pad(cx: TFContext, x: Node, paddings: Node, value: Node | None = None) -> Node:
    """Pad / PadV2: `paddings` is [rank, 2] (before, after) per axis; PadV2 adds the fill value."""
    pairs = cx.value(paddings, f"{cx.tf_op.type}'s paddings")
    if pairs.shape != (x.type.rank, 2):
        raise FrontendError(f"paddings of shape {list(pairs.shape)} for a rank-{x.type.rank} input")
    fill = 0.0 if value is None else cx.value(value, "PadV2's constant_values").item()
    return cx.op("pad", x, pads=tuple(int(p) for p in pairs.reshape(-1)), value=fill)


def _pool(op: str) -> Converter:
    def convert(cx: TFContext, x: Node) -> Node:
        kernel, strides = _spatial(cx, "ksize"), _spatial(cx, "strides")
        padding = _padding(cx, x, kernel, strides, (1, 1))
        extra = {} if op == "max_pool2d" else {"count_include_pad": False}  # TF averages over real pixels only
        return cx.op(op, x, kernel=kernel, strides=strides, padding=padding, data_layout=_layout(cx), **extra)

    convert.__name__ = op
    return convert


def matmul(cx: TFContext, a: Node, b: Node) -> Node:
    if cx.attr("transpose_a"):
        a = cx.op("transpose", a, perm=(1, 0))
    if cx.attr("transpose_b"):
        return cx.op("dense", a, b)  # dense takes W as [out, in]: exactly B when transpose_b
    return cx.op("matmul", a, b)


def batch_matmul(cx: TFContext, a: Node, b: Node) -> Node:
    swap = lambda t: cx.op("transpose", t, perm=(*range(t.type.rank - 2), t.type.rank - 1, t.type.rank - 2))
    a = swap(a) if cx.attr("adj_x") else a
    b = swap(b) if cx.attr("adj_y") else b
    return cx.op("matmul", a, b)


def bias_add(cx: TFContext, x: Node, bias: Node) -> Node:
    return cx.op("bias_add", x, bias, axis=1 if _layout(cx) == "NCHW" else -1)


def fused_batch_norm(cx: TFContext, x: Node, scale: Node, offset: Node, mean: Node, var: Node) -> Node:
    if cx.attr("is_training"):
        raise FrontendError("FusedBatchNorm in training mode is not supported (inference only)")
    axis = 1 if _layout(cx) == "NCHW" else -1
    return cx.op("batch_norm", x, scale, offset, mean, var, eps=cx.attr("epsilon"), axis=axis)


def relu6(cx: TFContext, x: Node) -> Node:
    return cx.op("clip", x, min=0.0, max=6.0)


def identity(cx: TFContext, x: Node, *_: Node) -> Node:
    return x


def no_op(cx: TFContext, *_: Node) -> None:
    """NoOp orders side effects (control dependencies): nothing to compute."""
    return None


def softmax(cx: TFContext, x: Node) -> Node:
    return cx.op("softmax", x, axis=-1)


def reshape(cx: TFContext, x: Node, shape: Node) -> Node:
    target = [int(s) for s in cx.value(shape, "Reshape's shape")]
    if -1 in target:
        known = int(np.prod([s for s in target if s != -1]))
        target[target.index(-1)] = x.type.numel // known
    return cx.op("reshape", x, shape=tuple(target))


def squeeze(cx: TFContext, x: Node) -> Node:
    dims = cx.attr("squeeze_dims") or [i for i, s in enumerate(x.shape) if s == 1]
    drop = {d % max(x.type.rank, 1) for d in dims}
    return cx.op("reshape", x, shape=tuple(s for i, s in enumerate(x.shape) if i not in drop))


def transpose(cx: TFContext, x: Node, perm: Node) -> Node:
    return cx.op("transpose", x, perm=tuple(int(p) for p in cx.value(perm, "Transpose's perm")))


def concat(cx: TFContext, *args: Node) -> Node:
    *tensors, axis = args
    return cx.op("concat", *tensors, axis=int(cx.value(axis, "ConcatV2's axis")))


def _reduce(op: str) -> Converter:
    def convert(cx: TFContext, x: Node, axes: Node) -> Node:
        dims = tuple(int(a) for a in np.atleast_1d(cx.value(axes, f"{op}'s axes")))
        return cx.op(op, x, axes=dims, keepdims=bool(cx.attr("keep_dims")))

    convert.__name__ = op
    return convert


TF_OPS: dict[str, Converter] = {
    "Identity": identity,
    "NoOp": no_op,
    "Conv2D": conv2d,
    "DepthwiseConv2dNative": depthwise_conv2d,
    "Pad": pad,
    "PadV2": pad,
    "MaxPool": _pool("max_pool2d"),
    "AvgPool": _pool("avg_pool2d"),
    "MatMul": matmul,
    "BatchMatMulV2": batch_matmul,
    "BiasAdd": bias_add,
    "FusedBatchNormV3": fused_batch_norm,
    "Relu": same("relu"),
    "Relu6": relu6,
    "Sigmoid": same("sigmoid"),
    "Tanh": same("tanh"),
    "Exp": same("exp"),
    "Sqrt": same("sqrt"),
    "Rsqrt": same("rsqrt"),
    "Erf": same("erf"),
    "Neg": same("neg"),
    "Add": same("add"),
    "AddV2": same("add"),
    "Sub": same("sub"),
    "Mul": same("mul"),
    "RealDiv": same("div"),
    "Maximum": same("maximum"),
    "Minimum": same("minimum"),
    "Softmax": softmax,
    "Reshape": reshape,
    "Squeeze": squeeze,
    "Transpose": transpose,
    "ConcatV2": concat,
    "Mean": _reduce("mean"),
    "Sum": _reduce("sum"),
    "Max": _reduce("max"),
}
