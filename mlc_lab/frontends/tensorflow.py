"""Import TensorFlow models (a Keras model or a tf.function): one small converter per TF op.

How it works:

1. The model becomes a `tf.function`, traced once for the example inputs' shapes and dtypes
   (`get_concrete_function`): a TF graph of ops like MatMul, BiasAdd, Conv2D, Relu.
2. `convert_variables_to_constants_v2` freezes the variables: every weight becomes a `Const` op.
   `Const` ops become `constant` nodes; `Placeholder`s become graph inputs; `Identity`/`NoOp` vanish.
3. Each remaining op goes through `TF_OPS[op.type]`: a short function that emits IR ops. An op with
   no converter fails before anything is converted, naming the op and the node.
4. Every converted value is checked against the shape TensorFlow inferred for it.

TensorFlow stores images NHWC and conv kernels HWIO; the IR's conv2d and pools take layouts as
attributes, so they are imported as they are (data_layout="NHWC", kernel_layout="HWIO"), no transposes.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter about CPU features
try:  # torch-mlir's LLVM must load before TensorFlow's, or LLVM aborts (see mlc_lab.codegen.mlir.module)
    import mlc_lab.codegen.mlir.module  # noqa: F401
except ImportError:  # no MLIR backend installed, or TensorFlow already imported: the MLIR backend says so
    pass

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.ops import OpError

__all__ = ["TF_OPS", "TFContext", "from_tensorflow", "supported_ops"]

Converter = Callable[..., Node]
_SKIP = ("NoOp",)


# == the importer =================================================================================
def from_tensorflow(model: Any, example_inputs: Any, name: str | None = None) -> Graph:
    """Trace `model` (Keras model or tf.function) on the example inputs' signature; return a verified Graph."""
    inputs = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    specs = [tf.TensorSpec(np.shape(x), tf.as_dtype(np.asarray(x).dtype)) for x in inputs]
    fn = model if hasattr(model, "get_concrete_function") else tf.function(lambda *xs: model(*xs, training=False))
    try:
        concrete = fn.get_concrete_function(*specs)
        frozen = convert_variables_to_constants_v2(concrete)
    except Exception as e:
        raise FrontendError(f"TensorFlow could not trace {type(model).__name__}: {type(e).__name__}: {e}") from e
    return import_graph(frozen.graph, [t.name for t in frozen.inputs], [t.name for t in frozen.outputs], name)


def import_graph(graph: tf.Graph, inputs: Sequence[str], outputs: Sequence[str], name: str | None = None) -> Graph:
    """Convert a frozen TF graph (weights as Const ops) into a Graph, `inputs`/`outputs` as tensor names."""
    ops = graph.get_operations()
    _check_supported(ops)
    cx = TFContext(GraphBuilder(name or "tf_model"))
    env: dict[str, Node] = {}
    input_ops = {t.split(":")[0] for t in inputs}
    for op in ops:  # a tf.Graph lists its operations in the order they were created: producers first
        if op.type == "Placeholder" and op.name in input_ops:
            t = op.outputs[0]
            env[t.name] = cx.b.input(op.name, tuple(t.shape.as_list()), t.dtype.as_numpy_dtype().dtype.name)
        elif op.type == "Const":
            env[op.outputs[0].name] = cx.b.constant(tf.make_ndarray(op.get_attr("value")), name=op.name)
        elif op.type not in _SKIP:
            _convert_op(cx, op, env)
    return cx.b.build([env[t] for t in outputs])


def _describe(op: tf.Operation) -> str:
    return f"TF {op.type} (node {op.name!r})"


def _convert_op(cx: TFContext, op: tf.Operation, env: dict[str, Node]) -> None:
    cx.tf_op = op
    try:
        result = TF_OPS[op.type](cx, *(env[t.name] for t in op.inputs))
    except (OpError, FrontendError) as e:
        raise FrontendError(f"{_describe(op)}: {e}") from e
    want = tuple(op.outputs[0].shape.as_list())
    if None not in want and want != result.shape:
        raise FrontendError(
            f"{_describe(op)}: the converter produced shape {list(result.shape)} but TensorFlow inferred "
            f"{list(want)} (a bug in the converter)"
        )
    env[op.outputs[0].name] = result


def supported_ops() -> list[str]:
    return sorted(["Placeholder", "Const", *_SKIP, *TF_OPS])


def _check_supported(ops: Sequence[tf.Operation]) -> None:
    known = set(supported_ops())
    for op in ops:
        if op.type not in known:
            listing = textwrap.fill(", ".join(supported_ops()), width=110, initial_indent="  ", subsequent_indent="  ")
            raise UnsupportedOpError(
                f"{_describe(op)} has no converter in mlc_lab.frontends.tensorflow.\nSupported TF ops:\n{listing}\n"
                "Add a converter to TF_OPS, or write the model without this op."
            )


# == what a converter sees ========================================================================
class TFContext:
    """The builder plus the TF op being converted (its attributes, and its name for new nodes)."""

    def __init__(self, builder: GraphBuilder) -> None:
        self.b = builder
        self.tf_op: tf.Operation | None = None

    def attr(self, key: str, default: Any = None) -> Any:
        try:
            value = self.tf_op.get_attr(key)
        except ValueError:
            return default
        return value.decode() if isinstance(value, bytes) else value

    def op(self, op: str, *inputs: Node, **attrs: Any) -> Node:
        return self.b.op(op, *inputs, name=self.tf_op.name, **attrs)

    def value(self, node: Node, what: str) -> np.ndarray:
        """A compile-time constant input (a Reshape's shape, a Mean's axes)."""
        if node.op != "constant":
            raise FrontendError(f"{what} must be a constant")
        return np.asarray(node.attrs["value"])


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
    """SAME pads so the output is ceil(size / stride), the odd pixel at the bottom/right; VALID pads nothing."""
    mode = cx.attr("padding")
    if mode == "VALID":
        return (0, 0, 0, 0)
    if mode != "SAME":
        raise FrontendError(f"padding {mode!r} is not supported (SAME or VALID)")
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


def _unary(op: str) -> Converter:
    def convert(cx: TFContext, x: Node) -> Node:
        return cx.op(op, x)

    convert.__name__ = op
    return convert


def _binary(op: str) -> Converter:
    def convert(cx: TFContext, a: Node, b: Node) -> Node:
        return cx.op(op, a, b)

    convert.__name__ = op
    return convert


def relu6(cx: TFContext, x: Node) -> Node:
    return cx.op("clip", x, min=0.0, max=6.0)


def identity(cx: TFContext, x: Node, *_: Node) -> Node:
    return x


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
    "Conv2D": conv2d,
    "MaxPool": _pool("max_pool2d"),
    "AvgPool": _pool("avg_pool2d"),
    "MatMul": matmul,
    "BatchMatMulV2": batch_matmul,
    "BiasAdd": bias_add,
    "FusedBatchNormV3": fused_batch_norm,
    "Relu": _unary("relu"),
    "Relu6": relu6,
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Exp": _unary("exp"),
    "Sqrt": _unary("sqrt"),
    "Rsqrt": _unary("rsqrt"),
    "Erf": _unary("erf"),
    "Neg": _unary("neg"),
    "Add": _binary("add"),
    "AddV2": _binary("add"),
    "Sub": _binary("sub"),
    "Mul": _binary("mul"),
    "RealDiv": _binary("div"),
    "Maximum": _binary("maximum"),
    "Minimum": _binary("minimum"),
    "Softmax": softmax,
    "Reshape": reshape,
    "Squeeze": squeeze,
    "Transpose": transpose,
    "ConcatV2": concat,
    "Mean": _reduce("mean"),
    "Sum": _reduce("sum"),
    "Max": _reduce("max"),
}
