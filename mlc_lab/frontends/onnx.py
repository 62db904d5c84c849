"""Import ONNX models: one small converter per ONNX op, like the PyTorch frontend's per aten op.

How it works:

1. `onnx_load.load_checked` reads the model (a path or a ModelProto) and checks it: a file that is
   not ONNX, a broken graph (undefined name, cycle, output never produced, a name produced twice) or
   an input without a static shape is a `FrontendError` naming the model and the problem. A symbolic
   dimension (a dynamic batch) is fixed with `input_shapes={"x": (1, 784)}`. Then ONNX's shape
   inference, so every value has a type.
2. Initializers (the weights) become `constant` nodes named after the initializer; graph inputs that
   are not initializers become graph inputs.
3. Each node goes through `ONNX_OPS[node.op_type]` with its inputs (None for an omitted optional
   input) and its attributes as keyword arguments. The converter sees the op's *version*: the
   `since_version` of the schema the model's opset selects (`cx.version`), because an op's meaning
   changes between versions (Softmax before 13 flattens to 2-D; Clip before 11 takes attributes,
   later inputs). Each entry records the newest version its converter follows (`OnnxOp.newest`):
   a node whose schema is newer fails, as does an op with no converter, before anything is converted.
4. Each converted value is checked against the shape and dtype ONNX's shape inference computed for it.

Real models (the light networks and operator cases in the onnx wheel, run by ONNX's own conformance
runner through `mlc_lab.interop.onnx_backend`) need more ops than the IR names. Each such converter
writes the op, exactly, in IR ops every backend already has, so nothing below the frontend changes:
1-d windows are 2-D ones of height 1, 3-d windows a sum or max over depth taps of 2-D ones, LRN an
average pool over channels, ConvTranspose a convolution of the zero-interleaved input with the flipped
kernel, Resize a constant interpolation matrix per axis, Einsum transposes around one batched matmul.
The compositions the PyTorch frontend needs too (windows, ConvTranspose, Resize, instance norm) live in
`mlc_lab.frontends.composites`.
Shapes are static: a shape, index list or pad amount computed at run time is an `UnsupportedOpError`,
as are sequences, strings and training ops (no converter), each naming the op, the node and the opset.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlc_lab._deps import require

try:
    import onnx
    from onnx import helper, numpy_helper
except ModuleNotFoundError:
    require("onnx", "the ONNX frontend (mlc_lab.frontends.onnx)")  # raises, naming the extra, if onnx is missing
    raise

from mlc_lab.frontends.base import (
    Converter,
    ConverterContext,
    check_supported,
    check_value,
    clean_name,
    converting,
    same,
)
from mlc_lab.frontends.composites import (
    chain,
    conv_nd,
    conv_transpose_nd,
    group_norm,
    pool_nd,
    resize_axes,
    spatial_dims,
)
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError
from mlc_lab.frontends.onnx_load import DEFAULT_DOMAINS, describe_node, load_checked
from mlc_lab.ir.builder import GraphBuilder
from mlc_lab.ir.graph import Graph, Node
from mlc_lab.ir.types import DTYPES

__all__ = ["ONNX_OPS", "OnnxContext", "OnnxOp", "from_onnx", "supported_ops"]


@dataclass(frozen=True)
class OnnxOp:
    """A converter, and the newest schema version (`since_version`) whose spec it was checked against."""

    convert: Converter
    newest: int


# == the importer =================================================================================
def from_onnx(
    model: str | os.PathLike | onnx.ModelProto,
    name: str | None = None,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
) -> Graph:
    """Convert an ONNX model (a path or a ModelProto) into a verified Graph.

    input_shapes: static shapes for inputs whose shape the model leaves symbolic ({"x": (1, 3, 224, 224)}).
    """
    schemas: dict[int, onnx.defs.OpSchema] = {}
    checked = load_checked(
        model, input_shapes, check_ops=lambda nodes, opset, where: schemas.update(_op_schemas(nodes, opset, where))
    )
    graph, where = checked.proto.graph, checked.where
    cx = OnnxContext(GraphBuilder(name or graph.name or "onnx_model"), checked.opset)
    env: dict[str, Node] = {}
    for init in graph.initializer:
        env[init.name] = cx.b.constant(_initializer(init, where), name=clean_name(init.name))
    for value in checked.inputs:
        dtype = _dtype(value.type.tensor_type.elem_type, f"{where}: input {value.name!r}")
        shape = tuple(d.dim_value for d in value.type.tensor_type.shape.dim)
        env[value.name] = cx.b.input(clean_name(value.name), shape, dtype)
    types = {v.name: v for v in graph.value_info}
    for node in checked.nodes:
        _convert_node(cx, node, schemas[id(node)], env, types, where)
    for value in graph.output:  # what the file declares: a mismatch is the model's fault, not a converter's
        label, unchecked = f"{where}: graph output {value.name!r}", value.name in cx.unchecked_values
        _check_type(label, value.name, env[value.name], value, check_shape=not unchecked, declared=True)
    return cx.b.build([env[v.name] for v in graph.output])


def _dtype(elem_type: int, what: str) -> str:
    """The IR dtype of an ONNX element type, or an error naming the value that has it."""
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem_type)).name
    except Exception:  # noqa: BLE001 - onnx raises KeyError/ValueError for unknown element types
        dtype = None
    if dtype not in DTYPES:
        onnx_name = (
            onnx.TensorProto.DataType.Name(elem_type) if elem_type in onnx.TensorProto.DataType.values() else elem_type
        )
        raise FrontendError(f"{what} has element type {onnx_name}; the IR supports {', '.join(DTYPES)}")
    return dtype


def _initializer(init: onnx.TensorProto, where: str) -> np.ndarray:
    _dtype(init.data_type, f"{where}: initializer {init.name!r}")
    try:
        return numpy_helper.to_array(init)
    except Exception as e:  # noqa: BLE001 - a malformed tensor (wrong byte count, missing external data)
        raise FrontendError(f"{where}: initializer {init.name!r} cannot be read: {e}") from None


def _op_schemas(nodes: Sequence[onnx.NodeProto], opset: int, where: str) -> dict[int, onnx.defs.OpSchema]:
    """Each node's schema at `opset` (by id); every unsupported op or version is listed in one error."""
    schemas: dict[int, onnx.defs.OpSchema] = {}

    def problem(node: onnx.NodeProto) -> tuple[str, str] | None:
        op = f"ONNX {node.op_type}"
        if node.domain not in DEFAULT_DOMAINS:
            return op, f"domain {node.domain!r} (only the default ONNX domain is supported)"
        if node.op_type not in ONNX_OPS:
            return op, "no converter"
        try:
            schema = onnx.defs.get_schema(node.op_type, max_inclusive_version=opset, domain="")
        except onnx.defs.SchemaError:
            return op, f"the op does not exist at opset {opset}"
        schemas[id(node)] = schema
        newest = ONNX_OPS[node.op_type].newest
        if schema.since_version > newest:
            return op, (
                f"version {schema.since_version} (at opset {opset}) is newer than the converter, which "
                f"follows the spec up to version {newest}"
            )
        return None

    check_supported(
        nodes,
        problem,
        _site,
        subject=f"{where} (opset {opset})",
        frontend="onnx",
        framework="ONNX",
        table="ONNX_OPS",
        supported=supported_ops(),
        advice="export the model without these ops",
    )
    return schemas


def _site(node: onnx.NodeProto) -> str:
    """`'my_node' -> 'y'`: the node's name and its first output."""
    return f"{node.name or '<unnamed>'!r} -> {node.output[0] if node.output else '<none>'!r}"


def _convert_node(
    cx: OnnxContext, node: onnx.NodeProto, schema: onnx.defs.OpSchema, env: dict[str, Node], types: dict, where: str
) -> None:
    cx.onnx_node, cx.version, cx.shape_unchecked = node, schema.since_version, False
    cx.label = clean_name(node.name or (node.output[0] if node.output else node.op_type))
    label = f"{where}: {describe_node(node)} at opset {cx.opset} (version {cx.version})"
    _check_attribute_types(node, schema, label)
    inputs = [env[i] if i else None for i in node.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name not in _HINTS}
    attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
    convert = ONNX_OPS[node.op_type].convert
    _check_arguments(convert, cx, inputs, attrs, label)
    with converting(label):
        result = convert(cx, *inputs, **attrs)
    results = result if isinstance(result, list) else [result]
    wanted = [i for i, name in enumerate(node.output) if name]
    if wanted and wanted[-1] >= len(results):
        missing = [node.output[i] for i in wanted if i >= len(results)]
        raise FrontendError(
            f"{label}: output {missing} is not supported (the converter produces the first {len(results)} only)"
        )
    unchecked = cx.shape_unchecked or any(i in cx.unchecked_values for i in node.input)
    for out_name, value in zip(node.output, results):
        if not out_name:
            continue
        if unchecked:
            cx.unchecked_values.add(out_name)
        if out_name in types:
            _check_type(label, out_name, value, types[out_name], check_shape=not unchecked)
        env[out_name] = value


#: Attributes that only hint at an implementation and never change a value: checked against the spec, then dropped.
_HINTS = frozenset({"consumed_inputs"})  # versions 1-5: which inputs an in-place kernel may overwrite


def _check_attribute_types(node: onnx.NodeProto, schema: onnx.defs.OpSchema, label: str) -> None:
    """Each attribute exists in the op's spec at this version, with the type the spec gives it."""
    for a in node.attribute:
        spec = schema.attributes.get(a.name)
        if spec is None:
            raise FrontendError(
                f"{label}: attribute {a.name!r} is not in the spec of {node.op_type}-{schema.since_version}"
            )
        if a.type != int(spec.type.value):
            given = onnx.AttributeProto.AttributeType.Name(a.type)
            raise FrontendError(f"{label}: attribute {a.name!r} is a {given}; the spec wants {spec.type.name}")


def _check_arguments(convert: Converter, cx: OnnxContext, inputs: list, attrs: dict[str, Any], label: str) -> None:
    """Converters take inputs positionally and attributes as keyword-only parameters: check both fit."""
    signature = inspect.signature(convert)
    accepted = {n for n, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(attrs) - accepted)
    if unknown:
        raise FrontendError(f"{label}: attribute {unknown} is not supported by the converter")
    try:
        signature.bind(cx, *inputs, **attrs)
    except TypeError as e:
        raise FrontendError(f"{label}: {len(inputs)} inputs and attributes {sorted(attrs)} do not fit: {e}") from None


def _check_type(
    label: str, out_name: str, value: Node, info: onnx.ValueInfoProto, check_shape: bool = True, declared: bool = False
) -> None:
    """The converted value against ONNX's inferred type (a converter bug) or the file's declared one (a bad model)."""
    tensor = info.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    shape = dims if check_shape and tensor.HasField("shape") else None
    dtype = _dtype(tensor.elem_type, repr(out_name)) if tensor.elem_type else None
    if declared:
        check_value(
            label, repr(out_name), value, shape, dtype, "the model declares", "the model's output type is wrong"
        )
    else:
        check_value(label, repr(out_name), value, shape, dtype, "ONNX inferred")


def supported_ops() -> list[str]:
    return sorted(ONNX_OPS)


# == what a converter sees ========================================================================
class OnnxContext(ConverterContext):
    """The converter context (mlc_lab.frontends.base), the model's opset, and the ONNX node being converted.

    New IR nodes take the ONNX node's name (its first output's when it has none); constants
    `<first output>.const`.
    """

    constant_hint = "an initializer or a Constant node"

    def __init__(self, builder: GraphBuilder, opset: int = 0) -> None:
        super().__init__(builder)
        self.opset = opset  #: the model's default-domain opset
        self.version = 0  #: the since_version of the current node's schema at that opset
        self.shape_unchecked = False  #: set by a converter whose output ONNX's shape inference gets wrong
        self.unchecked_values: set[str] = set()  #: values downstream of such an output
        self.onnx_node: onnx.NodeProto | None = None

    def op_name(self, op: str) -> str:
        return self.label

    def const_name(self, name: str) -> str:
        return clean_name(self.onnx_node.output[0]) + ".const"

    def value(self, node: Node | None, what: str) -> np.ndarray:
        """A compile-time constant input; one computed at run time (a shape from a graph input) is an
        `UnsupportedOpError`: shapes in the IR are static."""
        if node is not None and node.op != "constant":
            raise UnsupportedOpError(
                f"{what} must be a constant ({self.constant_hint}); it is computed at run time, and the IR's "
                "shapes are static"
            )
        return super().value(node, what)


def _axis(axis: int, rank: int, what: str, inclusive_end: bool = False) -> int:
    """A possibly negative axis as a non-negative one, or an error naming the valid range."""
    high = rank if inclusive_end else rank - 1
    if not -rank <= axis <= high:
        raise FrontendError(f"{what} {axis} is out of range for a rank-{rank} input (valid: {-rank} to {high})")
    return axis + rank if axis < 0 else axis


def _is_int(node: Node) -> bool:
    return np.dtype(node.dtype).kind in "iub"


# == converters: convolution and pooling ==========================================================
# The IR has 2-D windows (conv2d, max_pool2d, avg_pool2d); 1-d and 3-d ones are composed of them in
# `mlc_lab.frontends.composites` (shared with the PyTorch frontend).
def _pads(pads: Sequence[int] | None, n: int = 2) -> tuple[int, ...]:
    """ONNX pads are (begin per axis..., end per axis...): for 2-D the IR's (top, left, bottom, right)."""
    if pads and len(pads) != 2 * n:
        raise FrontendError(f"pads must have {2 * n} values for a {n}-d window, got {list(pads)}")
    return tuple(pads) if pads else (0,) * (2 * n)


def _window_padding(mode: str, pads, x: Node, kernel: Sequence[int], strides, dilations) -> tuple[int, ...]:
    """Explicit pads, or the SAME_UPPER/SAME_LOWER/VALID rule (output = ceil(input / stride))."""
    n = len(kernel)
    if mode == "NOTSET":
        return _pads(pads, n)
    if mode == "VALID":
        return (0,) * (2 * n)
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise FrontendError(f"auto_pad {mode!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    begins, ends = [], []
    for size, k, s, d in zip(x.shape[2:], kernel, strides, dilations):
        total = max((math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size, 0)
        small = total // 2
        begins.append(small if mode == "SAME_UPPER" else total - small)
        ends.append(total - begins[-1])
    return (*begins, *ends)


def _ntuple(values: Sequence[int] | None, n: int, what: str) -> tuple[int, ...]:
    if values is None:
        return (1,) * n
    if len(values) != n:
        raise FrontendError(f"{what} must have {n} values for a {n}-d window, got {list(values)}")
    return tuple(values)


def _pair(values: Sequence[int] | None, what: str) -> tuple[int, int]:
    return _ntuple(values, 2, what)


def conv(cx, x, w, b=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    """1-d, 2-d and 3-d convolution (`composites.conv_nd`)."""
    n = spatial_dims(x, "Conv")
    if kernel_shape is not None and tuple(kernel_shape) != w.shape[2:]:
        raise FrontendError(f"kernel_shape {list(kernel_shape)} differs from the weight's {list(w.shape[2:])}")
    strides, dilations = _ntuple(strides, n, "strides"), _ntuple(dilations, n, "dilations")
    padding = _window_padding(auto_pad, pads, x, w.shape[2:], strides, dilations)
    y = conv_nd(cx, x, w, strides, padding, dilations, group)
    return y if b is None else cx.op("bias_add", y, b, axis=1)


def _pool_padding(mode: str, pads, x: Node, kernel, strides, dilations) -> tuple[int, ...]:
    """Pooling's padding. Two SAME cases are refused because onnxruntime departs from the spec there:
    dilated windows (it pads for the undilated kernel) and strides longer than the window (the spec's
    formula asks for negative padding: onnxruntime crops the input, ONNX's reference fails)."""
    if mode in ("SAME_UPPER", "SAME_LOWER"):
        if any(d != 1 for d in dilations):
            raise FrontendError(
                f"auto_pad {mode} with dilations {list(dilations)} is not supported: give explicit pads"
            )
        for size, k, s in zip(x.shape[2:], kernel, strides):
            if (math.ceil(size / s) - 1) * s + k < size:
                raise FrontendError(
                    f"auto_pad {mode} with stride {s} longer than the kernel {k} over size {size} asks for negative "
                    "padding, which implementations read differently: give explicit pads"
                )
    return _window_padding(mode, pads, x, kernel, strides, dilations)


def _ceil_mode_shape(cx) -> None:
    """ONNX's shape inference keeps a last window that starts in the right padding; the spec (and
    onnxruntime, and the IR) drop it. So with ceil_mode the inferred shapes downstream are not checked."""
    cx.shape_unchecked = True


def _pool(cx, x, op: str, kernel, strides, padding, ceil_mode: int, dilations, **attrs) -> Node:
    """A 1-d, 2-d or 3-d pooling window (`composites.pool_nd`)."""
    if ceil_mode:
        _ceil_mode_shape(cx)
    return pool_nd(cx, x, op, kernel, strides, padding, bool(ceil_mode), dilations, **attrs)


def max_pool(
    cx, x, *, kernel_shape, strides=None, pads=None, auto_pad="NOTSET", ceil_mode=0, dilations=None, storage_order=0
):
    """ONNX strides default to 1 (not to the kernel, as in PyTorch). storage_order only shapes Indices."""
    n = spatial_dims(x, "MaxPool")
    kernel, strides, dilations = (
        _ntuple(kernel_shape, n, "kernel_shape"),
        _ntuple(strides, n, "strides"),
        _ntuple(dilations, n, "dilations"),
    )
    padding = _pool_padding(auto_pad, pads, x, kernel, strides, dilations)
    return _pool(cx, x, "max_pool2d", kernel, strides, padding, ceil_mode, dilations)


def average_pool(
    cx, x, *, kernel_shape, strides=None, pads=None, auto_pad="NOTSET", ceil_mode=0, count_include_pad=0, dilations=None
):
    n = spatial_dims(x, "AveragePool")
    if dilations is not None and any(d != 1 for d in dilations):
        raise UnsupportedOpError(f"AveragePool with dilations {list(dilations)} is not supported (only 1)")
    kernel, strides = _ntuple(kernel_shape, n, "kernel_shape"), _ntuple(strides, n, "strides")
    padding = _pool_padding(auto_pad, pads, x, kernel, strides, (1,) * n)
    return _pool(
        cx, x, "avg_pool2d", kernel, strides, padding, ceil_mode, None, count_include_pad=bool(count_include_pad)
    )


def global_average_pool(cx, x):
    """Mean over every spatial axis, kept as size 1 (the IR's global_avg_pool2d drops them: reshape back)."""
    if x.type.rank < 3:
        raise FrontendError(f"GlobalAveragePool needs a rank >= 3 input (N, C, spatial...), got rank {x.type.rank}")
    if x.type.rank != 4:
        return cx.op("mean", x, axes=tuple(range(2, x.type.rank)), keepdims=True)
    n, c = x.shape[:2]
    return cx.op("reshape", cx.op("global_avg_pool2d", x), shape=(n, c, 1, 1))


# == converters: linear algebra and normalisation =================================================
def matmul(cx, a, b):
    """NumPy matmul: a 1-D operand gets a unit axis for the product, removed again afterwards."""
    if a.type.rank == 0 or b.type.rank == 0:
        raise FrontendError("MatMul inputs must have rank >= 1")
    a2 = cx.op("reshape", a, shape=(1, *a.shape)) if a.type.rank == 1 else a
    b2 = cx.op("reshape", b, shape=(*b.shape, 1)) if b.type.rank == 1 else b
    y = cx.op("matmul", a2, b2)
    if a.type.rank == 1 or b.type.rank == 1:
        shape = list(y.shape)
        if b.type.rank == 1:
            shape.pop(-1)
        if a.type.rank == 1:
            shape.pop(-2 if b.type.rank != 1 else -1)
        y = cx.op("reshape", y, shape=tuple(shape))
    return y


def gemm(cx, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0, broadcast=0):
    """alpha * A' @ B' + beta * C, C broadcast to (M, N). transB=1 is nn.Linear's layout, `dense` as is.

    Before version 7, C must already be (M, N) unless broadcast=1. beta = 0 drops C, as onnxruntime does.
    """
    if a.type.rank != 2 or b.type.rank != 2:
        raise FrontendError(f"Gemm takes 2-D A and B, got shapes {list(a.shape)} and {list(b.shape)}")
    if _is_int(a) and (alpha != int(alpha) or beta != int(beta)):
        raise FrontendError(f"integer Gemm with non-integer alpha {alpha} / beta {beta} is not supported")
    if transA:
        a = cx.op("transpose", a, perm=(1, 0))
    y = cx.op("dense", a, b) if transB else cx.op("matmul", a, b)
    if alpha != 1.0:
        y = cx.op("mul", y, cx.const(alpha, y.dtype))
    if c is None or beta == 0:
        return y
    if cx.version < 7 and not broadcast and c.shape != y.shape:
        raise FrontendError(f"C has shape {list(c.shape)}, not {list(y.shape)}, and broadcast=0")
    if not _broadcasts_to(c.shape, y.shape):
        raise FrontendError(f"C of shape {list(c.shape)} does not broadcast to the product's {list(y.shape)}")
    if beta != 1.0:
        c = cx.op("mul", c, cx.const(beta, c.dtype))
    return cx.op("bias_add", y, c, axis=-1) if c.shape == y.shape[1:] else cx.op("add", y, c)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def batch_norm(
    cx,
    x,
    scale,
    bias,
    mean,
    var,
    *,
    epsilon=1e-5,
    momentum=0.9,
    spatial=1,
    is_test=None,
    training_mode=0,
):
    """Inference only: training_mode=1 (version 14+) or is_test=0 (before 7: training is the default) is refused."""
    if training_mode or (cx.version < 7 and not is_test):
        raise FrontendError(
            "BatchNormalization in training mode (batch statistics) is not supported: export the model in eval "
            "mode (is_test=1 before opset 7, training_mode=0 from opset 14)"
        )
    if not spatial:
        raise FrontendError("BatchNormalization with spatial=0 (per-activation statistics) is not supported")
    return cx.op("batch_norm", x, scale, bias, mean, var, eps=epsilon, axis=1)


def layer_norm(cx, x, scale, bias=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    """Normalise over axes [axis, rank); scale and bias broadcast to them; stash_type=1 computes in float32."""
    axis = _axis(axis, x.type.rank, "LayerNormalization axis")
    if stash_type != 1:
        raise FrontendError(f"LayerNormalization stash_type {stash_type} is not supported (only 1: float32)")
    tail = x.shape[axis:]
    bias = bias if bias is not None else cx.const(np.zeros(tail), scale.dtype)
    scale, bias = (v if v.shape == tail else cx.op("broadcast_to", v, shape=tail) for v in (scale, bias))
    if x.dtype == "float32":
        return cx.op("layer_norm", x, scale, bias, eps=epsilon, axis=axis)
    x32, s32, b32 = (cx.op("cast", v, dtype="float32") for v in (x, scale, bias))
    return cx.op("cast", cx.op("layer_norm", x32, s32, b32, eps=epsilon, axis=axis), dtype=x.dtype)


def _softmax(op: str) -> Converter:
    def convert(cx, x, *, axis=None):
        """From version 13: along one axis (default -1). Before: coerce to 2-D at `axis` (default 1)."""
        rank = x.type.rank
        if cx.version >= 13:
            return cx.op(op, x, axis=_axis(-1 if axis is None else axis, rank, "axis"))
        axis = _axis(1 if axis is None else axis, rank, "axis")
        if axis == rank - 1:
            return cx.op(op, x, axis=-1)
        flat = cx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))
        return cx.op("reshape", cx.op(op, flat, axis=1), shape=x.shape)

    convert.__name__ = op
    return convert


# == converters: elementwise (the 1:1 ones are `same(...)` entries in the table) ==================
def relu(cx, x):
    """Version 14 adds integer types: max(x, 0) there (the IR's relu is float-only)."""
    return cx.op("maximum", x, cx.const(0, x.dtype)) if _is_int(x) else cx.op("relu", x)


def _legacy_broadcast(cx, a: Node, b: Node, broadcast: int, axis: int | None) -> Node:
    """Before version 7: B must equal A's shape, or (broadcast=1) match A's dims from `axis` on."""
    if not broadcast:
        if a.shape != b.shape:
            raise FrontendError(f"shapes {list(a.shape)} and {list(b.shape)} differ and broadcast=0 (before opset 7)")
        return b
    if b.type.rank == 0 or b.type.numel == 1:
        return b
    start = a.type.rank - b.type.rank if axis is None else _axis(axis, a.type.rank, "broadcast axis")
    span = a.shape[start : start + b.type.rank]
    if start < 0 or len(span) != b.type.rank or any(d not in (1, s) for d, s in zip(b.shape, span)):
        raise FrontendError(f"B of shape {list(b.shape)} does not match A {list(a.shape)} from axis {start}")
    trailing = a.type.rank - start - b.type.rank
    return cx.op("reshape", b, shape=(*b.shape, *(1,) * trailing)) if trailing else b


def _truncating_div(cx, a: Node, b: Node) -> Node:
    """ONNX integer Div truncates toward zero (-7 / 2 = -3); the IR's integer div floors.

    |a| // |b| is the same under both; the sign comes back as sign(a) * sign(b), with sign = clip(-1, 1).
    """
    magnitude = cx.op("div", cx.op("abs", a), cx.op("abs", b))
    sign = cx.op("mul", cx.op("clip", a, min=-1, max=1), cx.op("clip", b, min=-1, max=1))
    return cx.op("mul", magnitude, sign)


def _arithmetic(op: str) -> Converter:
    def convert(cx, a, b, *, broadcast=0, axis=None):
        if cx.version < 7:
            b = _legacy_broadcast(cx, a, b, broadcast, axis)
        if op == "div" and _is_int(a):
            return _truncating_div(cx, a, b)
        if op == "pow" and a.dtype != b.dtype:
            return _mixed_pow(cx, a, b)
        return cx.op(op, a, b)

    convert.__name__ = op
    return convert


def _mixed_pow(cx, a: Node, b: Node) -> Node:
    """Pow from version 12 lets the exponent's type differ; the result has the base's type.

    A float exponent of an integer base is evaluated in float64 and truncated, as onnxruntime does.
    """
    if not _is_int(a):
        return cx.op("pow", a, cx.op("cast", b, dtype=a.dtype))
    if not _is_int(b):
        wide = cx.op("pow", cx.op("cast", a, dtype="float64"), cx.op("cast", b, dtype="float64"))
        return cx.op("cast", wide, dtype=a.dtype)
    return cx.op("pow", a, cx.op("cast", b, dtype=a.dtype))


def _variadic(op: str) -> Converter:
    def convert(cx, *xs):
        """Max/Min of one or more inputs; NumPy broadcasting from version 8, equal shapes before."""
        xs = [x for x in xs if x is not None]
        if not xs:
            raise FrontendError("needs at least one input")
        if cx.version < 8 and len({x.shape for x in xs}) > 1:
            raise FrontendError(f"inputs must have equal shapes before opset 8, got {[list(x.shape) for x in xs]}")
        y = xs[0]
        for x in xs[1:]:
            y = cx.op(op, y, x)
        return y

    convert.__name__ = op
    return convert


def clip(cx, x, lo=None, hi=None, *, min=None, max=None):  # noqa: A002 - ONNX's names
    """Bounds are attributes before version 11, optional scalar inputs from 11.

    The attribute defaults are -FLT_MAX/+FLT_MAX (version 6 says so; ONNX's version converter reads
    version 1 the same way), so an infinite input clips to FLT_MAX. From version 11 a minimum above the
    maximum makes every output the maximum (the spec says so).
    """
    if cx.version < 11:
        limit = float(np.finfo(np.float32).max)
        min, max = (-limit if min is None else min), (limit if max is None else max)  # noqa: A001
        return cx.op("clip", x, min=min, max=max)
    bounds = []
    for node, what in ((lo, "Clip's min"), (hi, "Clip's max")):
        if node is None:
            bounds.append(None)
            continue
        value = cx.value(node, what)
        if value.size != 1:
            raise FrontendError(f"{what} must be a scalar, got shape {list(value.shape)}")
        bounds.append(value.reshape(()).item())
    low, high = bounds
    if low is not None and high is not None and low > high:
        low = high
    return cx.op("clip", x, min=low, max=high)


# == converters: shapes ===========================================================================
def identity(cx, x):
    return x


def dropout(cx, x, ratio_input=None, training_mode=None, *, ratio=0.5, is_test=None, seed=None):
    """Inference is the identity. Training mode (is_test=0 before version 7, training_mode=true from 12) is refused."""
    if cx.version < 7 and not is_test:
        raise FrontendError("Dropout with is_test=0 (training mode, the default before opset 7) is not supported")
    if training_mode is not None and bool(cx.value(training_mode, "Dropout's training_mode").any()):
        raise FrontendError("Dropout in training mode (training_mode=true) is not supported")
    if len(cx.onnx_node.output) > 1 and cx.onnx_node.output[1]:  # the mask: all kept (float before 10, bool from 10)
        mask = np.ones(x.shape, dtype=x.dtype if cx.version < 10 else np.bool_)
        return [x, cx.b.constant(mask, name=clean_name(cx.onnx_node.output[1]))]
    return x


def flatten(cx, x, *, axis=1):
    """(prod(shape[:axis]), prod(shape[axis:])); axis may equal the rank (then the second dim is 1)."""
    axis = _axis(axis, x.type.rank, "Flatten axis", inclusive_end=True)
    return cx.op("reshape", x, shape=(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def reshape(cx, x, target=None, *, shape=None, allowzero=0):
    """The shape is an attribute before version 5, an input after. 0 copies the input's dimension
    (unless allowzero=1, version 14+); one -1 is inferred."""
    if cx.version < 5 and shape is None:
        raise FrontendError("Reshape before opset 5 needs a `shape` attribute")
    dims = list(shape) if cx.version < 5 else cx.ints(target, "Reshape's shape")
    if allowzero and 0 in dims and -1 in dims:
        raise FrontendError(f"shape {dims} has both 0 and -1 with allowzero=1")
    if not allowzero:
        for i, d in enumerate(dims):
            if d == 0:
                if i >= x.type.rank:
                    raise FrontendError(
                        f"shape {dims}: 0 at axis {i} copies a dimension the rank-{x.type.rank} input lacks"
                    )
                dims[i] = x.shape[i]
    return cx.op("reshape", x, shape=tuple(dims))


def transpose(cx, x, *, perm=None):
    return cx.op("transpose", x, perm=tuple(perm) if perm else tuple(reversed(range(x.type.rank))))


def concat(cx, *tensors, axis=None):
    """`axis` is required from version 4 (default 1 before); negative from 11."""
    if axis is None:
        if cx.version >= 4:
            raise FrontendError("Concat needs an `axis` attribute")
        axis = 1
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        raise FrontendError("Concat needs at least one input")
    return cx.op("concat", *tensors, axis=_axis(axis, tensors[0].type.rank, "Concat axis"))


def constant(
    cx,
    *,
    value=None,
    value_float=None,
    value_floats=None,
    value_int=None,
    value_ints=None,
    sparse_value=None,
    value_string=None,
    value_strings=None,
):
    """A tensor `value`, or (version 12+) a float/int scalar or list; sparse and string constants are refused."""
    name = clean_name(cx.onnx_node.output[0])
    if value is not None:
        where = f"Constant {cx.onnx_node.output[0]!r}"
        _dtype(value.data_type, where)
        return cx.b.constant(numpy_helper.to_array(value), name=name)
    for given, dtype in (
        (value_float, "float32"),
        (value_floats, "float32"),
        (value_int, "int64"),
        (value_ints, "int64"),
    ):
        if given is not None:
            return cx.b.constant(np.asarray(given, dtype=dtype), name=name)
    kind = (
        "sparse" if sparse_value is not None else "string" if (value_string or value_strings) is not None else "empty"
    )
    raise FrontendError(f"a {kind} Constant is not supported (only tensors and float/int values)")


def _reduce(op: str, axes_input_from: int) -> Converter:
    def convert(cx, x, axes_node=None, *, axes=None, keepdims=1, noop_with_empty_axes=0):
        """Axes are an attribute before `axes_input_from` (13 for ReduceSum, 18 for the others), an input after.

        No axes means all of them, unless noop_with_empty_axes=1 (input form only): then the identity.
        """
        if cx.version >= axes_input_from:
            axes = None if axes_node is None else cx.ints(axes_node, f"{op}'s axes")
        if not axes:
            if noop_with_empty_axes:
                return x
            axes = None
        else:
            axes = tuple(sorted({_axis(a, x.type.rank, "reduction axis") for a in axes}))  # a set, as onnxruntime
        return cx.op(op, x, axes=axes, keepdims=bool(keepdims))

    convert.__name__ = op
    return convert


def _axes_argument(cx, axes_attr, axes_node, what: str) -> list[int] | None:
    """Squeeze/Unsqueeze axes: an attribute before version 13, an input from 13."""
    if cx.version >= 13:
        return None if axes_node is None else cx.ints(axes_node, what)
    return None if axes_attr is None else list(axes_attr)


def unsqueeze(cx, x, axes_node=None, *, axes=None):
    axes = _axes_argument(cx, axes, axes_node, "Unsqueeze's axes")
    if not axes:
        raise FrontendError("Unsqueeze needs axes")
    rank = x.type.rank + len(axes)
    positions = sorted(_axis(a, rank, "Unsqueeze axis") for a in axes)
    if len(set(positions)) != len(positions):
        raise FrontendError(f"Unsqueeze axes {axes} repeat an axis")
    shape = list(x.shape)
    for a in positions:
        shape.insert(a, 1)
    return cx.op("reshape", x, shape=tuple(shape))


def squeeze(cx, x, axes_node=None, *, axes=None):
    axes = _axes_argument(cx, axes, axes_node, "Squeeze's axes")
    if axes:
        drop = {_axis(a, x.type.rank, "Squeeze axis") for a in axes}
        wide = [a for a in sorted(drop) if x.shape[a] != 1]
        if wide:
            raise FrontendError(f"cannot squeeze axis {wide} of shape {list(x.shape)}: its size is not 1")
    else:
        drop = {i for i, s in enumerate(x.shape) if s == 1}
    return cx.op("reshape", x, shape=tuple(s for i, s in enumerate(x.shape) if i not in drop))


# == converters: activations (each in ops every backend has; exact, not approximations) ===========
def _negative_part(cx, x: Node) -> Node:
    return cx.op("minimum", x, cx.const(0, x.dtype))


def _positive_part(cx, x: Node) -> Node:
    return cx.op("maximum", x, cx.const(0, x.dtype))


def leaky_relu(cx, x, *, alpha=0.01):
    """max(x, 0) + alpha * min(x, 0)."""
    return cx.op("add", _positive_part(cx, x), cx.op("mul", _negative_part(cx, x), cx.const(alpha, x.dtype)))


def prelu(cx, x, slope):
    """max(x, 0) + slope * min(x, 0); before version 7 a 1-D slope of C values runs along axis 1."""
    if cx.version < 7 and slope.type.rank == 1 and x.type.rank > 2 and slope.shape[0] == x.shape[1] != 1:
        slope = cx.op("reshape", slope, shape=(slope.shape[0], *(1,) * (x.type.rank - 2)))
    return cx.op("add", _positive_part(cx, x), cx.op("mul", _negative_part(cx, x), slope))


def _elu_terms(cx, x: Node, alpha: float) -> Node:
    """max(x, 0) + alpha * (exp(min(x, 0)) - 1)."""
    one = cx.const(1, x.dtype)
    negative = cx.op("mul", cx.op("sub", cx.op("exp", _negative_part(cx, x)), one), cx.const(alpha, x.dtype))
    return cx.op("add", _positive_part(cx, x), negative)


def elu(cx, x, *, alpha=1.0):
    return _elu_terms(cx, x, alpha)


def selu(cx, x, *, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875):
    return cx.op("mul", _elu_terms(cx, x, alpha), cx.const(gamma, x.dtype))


def softplus(cx, x):
    """ln(exp(x) + 1), as the spec writes it."""
    return cx.op("log", cx.op("add", cx.op("exp", x), cx.const(1, x.dtype)))


def softsign(cx, x):
    return cx.op("div", x, cx.op("add", cx.op("abs", x), cx.const(1, x.dtype)))


def hard_sigmoid(cx, x, *, alpha=0.2, beta=0.5):
    return cx.op("clip", cx.op("add", cx.op("mul", x, cx.const(alpha, x.dtype)), cx.const(beta, x.dtype)), min=0, max=1)


def sign(cx, x):
    """-1, 0 or 1 (NaN stays NaN). Integers: clip to [-1, 1]. Floats: scaled past the largest
    subnormal's reciprocal first (x * 2^k * 2^k is >= 1 in magnitude for every non-zero x, inf for
    large ones), then clipped: exact for every value, with no comparison op."""
    if _is_int(x):
        return cx.op("clip", x, min=-1, max=1)
    k = {"float16": 12, "float32": 75, "float64": 537}.get(x.dtype)
    if k is None:
        raise UnsupportedOpError(f"Sign of {x.dtype} is not supported")
    big = cx.const(2.0**k, x.dtype)
    return cx.op("clip", cx.op("mul", cx.op("mul", x, big), big), min=-1, max=1)


def shrink(cx, x, *, bias=0.0, lambd=0.5):
    """x + bias below -lambd, x - bias above lambd, 0 between: max(x - lambd, 0) - max(-x - lambd, 0) moves
    by lambd; the difference bias - lambd is added back on each side (floats only)."""
    if _is_int(x):
        raise UnsupportedOpError(f"Shrink of {x.dtype} is not supported (floating-point only)")
    if bias != lambd:
        raise UnsupportedOpError(f"Shrink with bias {bias} != lambd {lambd} is not supported")
    upper = _positive_part(cx, cx.op("sub", x, cx.const(lambd, x.dtype)))
    lower = _positive_part(cx, cx.op("sub", cx.op("neg", x), cx.const(lambd, x.dtype)))
    return cx.op("sub", upper, lower)


def _sum_or_mean(mean: bool) -> Converter:
    def convert(cx, *xs):
        """Sum/Mean of one or more inputs; NumPy broadcasting from version 8, equal shapes before."""
        xs = [x for x in xs if x is not None]
        if not xs:
            raise FrontendError("needs at least one input")
        if cx.version < 8 and len({x.shape for x in xs}) > 1:
            raise FrontendError(f"inputs must have equal shapes before opset 8, got {[list(x.shape) for x in xs]}")
        y = chain(cx, "add", xs)
        return cx.op("div", y, cx.const(len(xs), y.dtype)) if mean and len(xs) > 1 else y

    convert.__name__ = "mean" if mean else "sum"
    return convert


# == converters: normalisation ====================================================================
def lrn(cx, x, *, size, alpha=0.0001, beta=0.75, bias=1.0):
    """x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ** beta.

    The channel window is a (size, 1) average pool over x^2 laid out as (N, 1, C, rest), zero-padded
    (size - 1) // 2 channels before and the rest after, counting the padding: alpha * mean = alpha / size * sum.
    """
    if x.type.rank < 3:
        raise FrontendError(f"LRN needs an (N, C, ...) input, got shape {list(x.shape)}")
    n, c = x.shape[:2]
    rest = math.prod(x.shape[2:])
    squares = cx.op("reshape", cx.op("mul", x, x), shape=(n, 1, c, rest))
    before = (size - 1) // 2
    window = cx.op(
        "avg_pool2d",
        squares,
        kernel=(size, 1),
        strides=(1, 1),
        padding=(before, 0, size - 1 - before, 0),
        count_include_pad=True,
    )
    base = cx.op("add", cx.op("mul", window, cx.const(alpha, x.dtype)), cx.const(bias, x.dtype))
    scale = cx.op("reshape", cx.op("pow", base, cx.const(beta, x.dtype)), shape=x.shape)
    return cx.op("div", x, scale)


def instance_norm(cx, x, scale, bias, *, epsilon=1e-5):
    """(x - mean) / sqrt(var + epsilon) * scale + bias, statistics per sample and channel over the spatial axes."""
    if x.type.rank < 3:
        raise FrontendError(f"InstanceNormalization needs an (N, C, spatial...) input, got shape {list(x.shape)}")
    return group_norm(cx, x, x.shape[1], scale, bias, epsilon)


# == converters: transposed convolution ===========================================================
def conv_transpose(
    cx,
    x,
    w,
    b=None,
    *,
    auto_pad="NOTSET",
    dilations=None,
    group=1,
    kernel_shape=None,
    output_padding=None,
    output_shape=None,
    pads=None,
    strides=None,
):
    """1-d and 2-d transposed convolution with explicit pads (`composites.conv_transpose_nd`)."""
    n = spatial_dims(x, "ConvTranspose")
    if auto_pad != "NOTSET" or output_shape is not None:
        raise UnsupportedOpError("ConvTranspose with auto_pad or output_shape is not supported: give explicit pads")
    kernel = w.shape[2:]
    if kernel_shape is not None and tuple(kernel_shape) != kernel:
        raise FrontendError(f"kernel_shape {list(kernel_shape)} differs from the weight's {list(kernel)}")
    strides, dilations = _ntuple(strides, n, "strides"), _ntuple(dilations, n, "dilations")
    extra = _ntuple(output_padding, n, "output_padding") if output_padding is not None else (0,) * n
    y = conv_transpose_nd(cx, x, w, strides, _pads(pads, n), dilations, extra, group)
    return y if b is None else cx.op("bias_add", y, b, axis=1)


# == converters: shapes and indexing ==============================================================
def shape(cx, x, *, start=0, end=None):
    """A constant: shapes are static. start/end (version 15) select dimensions, Python-slice style."""
    return cx.b.constant(np.asarray(x.shape[start:end], dtype=np.int64), name=clean_name(cx.onnx_node.output[0]))


def constant_of_shape(cx, dims, *, value=None):
    """A constant of shape `dims` filled with `value` (a one-element tensor, default float32 0)."""
    fill = np.zeros(1, np.float32) if value is None else numpy_helper.to_array(value).reshape(-1)
    if value is not None:
        _dtype(value.data_type, "ConstantOfShape's value")
    if fill.size != 1:
        raise FrontendError(f"ConstantOfShape's value must have one element, got {fill.size}")
    shape_ = cx.ints(dims, "ConstantOfShape's shape") if dims.type.numel else []
    return cx.b.constant(np.full(shape_, fill[0], dtype=fill.dtype), name=clean_name(cx.onnx_node.output[0]))


def cast(cx, x, *, to, saturate=1, round_mode="up"):
    """Element type conversion; float -> int truncates toward zero (as the IR's cast and NumPy)."""
    return cx.cast(x, _dtype(to, "Cast's target type"))


def expand(cx, x, target):
    """Broadcast to np.broadcast_shapes(x.shape, shape): both sides may have size-1 axes."""
    dims = cx.ints(target, "Expand's shape")
    try:
        out = np.broadcast_shapes(x.shape, tuple(dims))
    except ValueError:
        raise FrontendError(f"shape {list(x.shape)} does not broadcast with {dims}") from None
    if out == x.shape:
        return x
    if len(out) > x.type.rank:
        x = cx.op("reshape", x, shape=(*(1,) * (len(out) - x.type.rank), *x.shape))
    return cx.op("broadcast_to", x, shape=out)


def tile(cx, x, repeats_node, tiles=None, axis=None):
    """x repeated `repeats[i]` times along each axis: (d) -> (1, d) -> broadcast (r, d) -> (r * d)."""
    if tiles is not None or axis is not None:
        raise UnsupportedOpError("Tile before opset 6 (tiles and axis inputs) is not supported")
    repeats = cx.ints(repeats_node, "Tile's repeats")
    if len(repeats) != x.type.rank or min(repeats, default=1) < 0:
        raise FrontendError(f"Tile's repeats {repeats} must be {x.type.rank} non-negative ints")
    if all(r == 1 for r in repeats):
        return x
    interleaved = tuple(v for d in x.shape for v in (1, d))
    wide = tuple(v for r, d in zip(repeats, x.shape) for v in (r, d))
    y = cx.op("broadcast_to", cx.op("reshape", x, shape=interleaved), shape=wide)
    return cx.op("reshape", y, shape=tuple(r * d for r, d in zip(repeats, x.shape)))


def split(cx, x, split_node=None, *, axis=0, split=None, num_outputs=None):
    """Pieces along `axis`: sizes from the `split` attribute (before 13) or input (13+), else equal
    parts, one per output (num_outputs from 18: the last may be smaller)."""
    axis = _axis(axis, x.type.rank, "Split axis")
    size = x.shape[axis]
    if cx.version >= 13 and split_node is not None:
        sizes = cx.ints(split_node, "Split's split")
    elif cx.version < 13 and split is not None:
        sizes = list(split)
    elif cx.version < 13 and split_node is not None:  # version 2..11 allowed it as a second input too
        sizes = cx.ints(split_node, "Split's split")
    elif cx.version >= 18 and num_outputs is None:
        raise FrontendError("Split from opset 18 needs a `split` input or a `num_outputs` attribute")
    else:
        parts = num_outputs if num_outputs is not None else len(cx.onnx_node.output)
        step = -(-size // parts) if num_outputs is not None else size // parts
        if num_outputs is None and size % parts:
            raise FrontendError(f"axis {axis} of size {size} does not split into {parts} equal parts")
        sizes = [min(step, size - i * step) for i in range(parts)]
    if sum(sizes) != size or min(sizes) < 0:
        raise FrontendError(f"split sizes {sizes} do not add up to axis {axis}'s size {size}")
    pieces, start = [], 0
    for s in sizes:
        pieces.append(cx.op("slice", x, axes=(axis,), starts=(start,), ends=(start + s,)))
        start += s
    return pieces


def slice_(
    cx, x, starts_node=None, ends_node=None, axes_node=None, steps_node=None, *, starts=None, ends=None, axes=None
):
    """Starts/ends/axes are attributes before version 10, inputs from 10 (with steps); ends are clamped
    (INT_MAX means to the end). Negative steps are refused."""
    if cx.version >= 10:
        starts, ends = cx.ints(starts_node, "Slice's starts"), cx.ints(ends_node, "Slice's ends")
        axes = None if axes_node is None else cx.ints(axes_node, "Slice's axes")
        steps = [1] * len(starts) if steps_node is None else cx.ints(steps_node, "Slice's steps")
    else:
        if starts is None or ends is None:
            raise FrontendError("Slice before opset 10 needs `starts` and `ends` attributes")
        steps = [1] * len(starts)
    axes = list(range(len(starts))) if axes is None else [_axis(a, x.type.rank, "Slice axis") for a in axes]
    if not len(axes) == len(starts) == len(ends) == len(steps):
        raise FrontendError(f"Slice's starts {list(starts)}, ends {list(ends)}, axes and steps differ in length")
    if any(s == 0 for s in steps):
        raise FrontendError(f"Slice steps {steps} contain 0")
    if any(s < 0 for s in steps):
        raise UnsupportedOpError(f"Slice with negative steps {steps} is not supported")
    return cx.op("slice", x, axes=tuple(axes), starts=tuple(starts), ends=tuple(ends), steps=tuple(steps))


def pad(
    cx, x, pads_node=None, value_node=None, axes_node=None, *, mode="constant", pads=None, value=0.0, paddings=None
):
    """Constant, reflect or edge padding. pads (begin per axis, then end per axis) and value are
    attributes before version 11, inputs from 11 (axes from 18). Negative pads crop."""
    if cx.version < 11:
        begins_ends = list(pads if pads is not None else paddings or [])
        fill = value
    else:
        begins_ends = cx.ints(pads_node, "Pad's pads")
        fill = 0 if value_node is None else cx.value(value_node, "Pad's constant_value").reshape(-1)[0].item()
    rank = x.type.rank
    axes = (
        list(range(rank))
        if axes_node is None
        else [_axis(a, rank, "Pad axis") for a in cx.ints(axes_node, "Pad's axes")]
    )
    if len(begins_ends) != 2 * len(axes):
        raise FrontendError(f"pads {begins_ends} must have {2 * len(axes)} values (begin and end per axis)")
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        widths[a] = (begins_ends[i], begins_ends[i + len(axes)])
    if any(lo < 0 or hi < 0 for lo, hi in widths):  # crop first, then pad what is positive
        x = cx.op(
            "slice",
            x,
            axes=tuple(range(rank)),
            starts=tuple(max(-lo, 0) for lo, _ in widths),
            ends=tuple(d - max(-hi, 0) for d, (_, hi) in zip(x.shape, widths)),
        )
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
    if not any(lo or hi for lo, hi in widths):
        return x
    if mode == "constant":
        return cx.op("pad", x, pads=tuple(v for pair in widths for v in pair), value=float(fill))
    if mode not in ("reflect", "edge"):
        raise UnsupportedOpError(f"Pad mode {mode!r} is not supported (constant, reflect and edge are)")
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            x = _pad_axis(cx, x, axis, lo, hi, mode)
    return x


def _pad_axis(cx, x: Node, axis: int, before: int, after: int, mode: str) -> Node:
    """Reflect (mirror, edge not repeated) or edge (repeat the border) padding of one axis, by slices."""
    size = x.shape[axis]
    if mode == "reflect" and max(before, after) >= size:
        raise FrontendError(f"reflect padding of {max(before, after)} needs more than {size} elements on axis {axis}")

    def at(i: int) -> Node:
        return cx.op("slice", x, axes=(axis,), starts=(i,), ends=(i + 1,))

    if mode == "edge":
        lead = [at(0)] * before
        tail = [at(size - 1)] * after
    else:
        lead = [at(i) for i in range(before, 0, -1)]
        tail = [at(size - 2 - i) for i in range(after)]
    return cx.op("concat", *lead, x, *tail, axis=axis)


def gather(cx, data, indices, *, axis=0):
    """data[..., indices, ...] along `axis` (IR `take`); constant data and indices are folded here."""
    axis = _axis(axis, data.type.rank, "Gather axis")
    if not _is_int(indices) or indices.dtype not in ("int32", "int64"):
        raise FrontendError(f"Gather indices must be int32 or int64, got {indices.dtype}")
    if indices.op == "constant":
        size = data.shape[axis]
        idx = cx.value(indices, "Gather's indices")
        if idx.size and (idx.min() < -size or idx.max() >= size):
            raise FrontendError(f"Gather indices {idx.tolist()} are out of range for axis {axis} of size {size}")
        if data.op == "constant":
            array = np.take(cx.value(data, "Gather's data"), idx, axis=axis)
            return cx.b.constant(array, name=clean_name(cx.onnx_node.output[0]))
    return cx.op("take", data, indices, axis=axis)


def _comparison(op: str) -> Converter:
    def convert(cx, a, b, *, broadcast=0, axis=None):
        """Elementwise with NumPy broadcasting (from version 7; `broadcast`/`axis` before); bool result."""
        if cx.version < 7:
            b = _legacy_broadcast(cx, a, b, broadcast, axis)
        return cx.op(op, a, b)

    convert.__name__ = op
    return convert


def where(cx, cond, a, b):
    return cx.op("where", cond, a, b)


def depth_to_space(cx, x, *, blocksize, mode="DCR"):
    """(N, C, H, W) -> (N, C / b^2, H b, W b): DCR reads channels as (b, b, C'), CRD as (C', b, b)."""
    if x.type.rank != 4:
        raise FrontendError(f"DepthToSpace needs a rank-4 input, got shape {list(x.shape)}")
    n, c, h, w = x.shape
    b = blocksize
    if c % (b * b):
        raise FrontendError(f"{c} channels do not divide by blocksize^2 = {b * b}")
    if mode == "DCR":
        y = cx.op("reshape", x, shape=(n, b, b, c // (b * b), h, w))
        y = cx.op("transpose", y, perm=(0, 3, 4, 1, 5, 2))
    elif mode == "CRD":
        y = cx.op("reshape", x, shape=(n, c // (b * b), b, b, h, w))
        y = cx.op("transpose", y, perm=(0, 1, 4, 2, 5, 3))
    else:
        raise FrontendError(f"DepthToSpace mode {mode!r} is not DCR or CRD")
    return cx.op("reshape", y, shape=(n, c // (b * b), h * b, w * b))


def range_(cx, start, limit, delta, *, stash_type=1):
    """A constant: start, limit and delta must be constants (shapes are static). Computed in float64 and
    rounded once, so `stash_type` (version 27: the precision of the accumulation) changes nothing."""
    s, lim, d = (
        cx.value(v, f"Range's {what}").reshape(()) for v, what in ((start, "start"), (limit, "limit"), (delta, "delta"))
    )
    if d == 0:
        raise FrontendError("Range's delta is 0")
    count = max(int(np.ceil((lim - s) / d)), 0)
    values = (s + d * np.arange(count)).astype(s.dtype)
    return cx.b.constant(values, name=clean_name(cx.onnx_node.output[0]))


# == converters: resizing and einsum ==============================================================
def resize(
    cx,
    x,
    roi=None,
    scales_node=None,
    sizes_node=None,
    *,
    mode="nearest",
    coordinate_transformation_mode="half_pixel",
    nearest_mode="round_prefer_floor",
    cubic_coeff_a=-0.75,
    exclude_outside=0,
    extrapolation_value=0.0,
    antialias=0,
    axes=None,
    keep_aspect_ratio_policy="stretch",
):
    """Nearest and (n-)linear resizing with static scales or sizes: per axis a constant matrix product.

    Version 10 takes (x, scales) and resizes as Upsample (asymmetric coordinates, nearest rounds down).
    """
    rank = x.type.rank
    if cx.version < 11:
        scales_node, roi = roi, None
        coordinate_transformation_mode, nearest_mode = "asymmetric", "floor"
    if antialias or keep_aspect_ratio_policy != "stretch" or exclude_outside:
        raise UnsupportedOpError("Resize with antialias, exclude_outside or keep_aspect_ratio_policy is not supported")
    axes = list(range(rank)) if axes is None else [_axis(a, rank, "Resize axis") for a in axes]
    scales, sizes = [1.0] * rank, list(x.shape)
    if sizes_node is not None and sizes_node.type.numel:
        given = cx.ints(sizes_node, "Resize's sizes")
        for a, s in zip(axes, given, strict=True):
            sizes[a], scales[a] = s, s / x.shape[a]
    elif scales_node is not None and scales_node.type.numel:
        given = cx.value(scales_node, "Resize's scales").reshape(-1).tolist()
        for a, s in zip(axes, given, strict=True):
            scales[a], sizes[a] = float(s), int(math.floor(x.shape[a] * s))
    else:
        raise FrontendError("Resize needs scales or sizes")
    return resize_axes(cx, x, sizes, scales, mode, coordinate_transformation_mode, nearest_mode)


def upsample(cx, x, scales_node=None, *, mode="nearest", scales=None, height_scale=None, width_scale=None):
    """Upsample (deprecated in 10): Resize with asymmetric coordinates; nearest rounds down."""
    if cx.version >= 9:
        scales = cx.value(scales_node, "Upsample's scales").reshape(-1).tolist()
    elif scales is None:
        raise FrontendError("Upsample needs scales")
    if len(scales) != x.type.rank:
        raise FrontendError(f"Upsample's scales {list(scales)} must have one value per axis ({x.type.rank})")
    sizes = [int(math.floor(d * s)) for d, s in zip(x.shape, scales)]
    return resize_axes(cx, x, sizes, [float(s) for s in scales], mode, "asymmetric", "floor")


def _einsum_terms(equation: str, ranks: Sequence[int]) -> tuple[list[str], str]:
    """'bij,bjk->bik' as (['bij', 'bjk'], 'bik'); '...' becomes upper-case letters; no '->': implicit output."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise FrontendError(f"Einsum equation {equation!r} has {len(terms)} operands, the node {len(ranks)}")
    ellipsis = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    spans = [rank - (len(term) - 3) for term, rank in zip(terms, ranks) if "..." in term]
    width = max(spans, default=0)
    expanded = []
    for term, rank in zip(terms, ranks):
        if "..." in term:  # NumPy aligns ellipsis dimensions from the right
            n = rank - (len(term) - 3)
            term = term.replace("...", ellipsis[width - n : width])
        if len(term) != rank:
            raise FrontendError(f"Einsum term {term!r} does not match an operand of rank {rank}")
        expanded.append(term)
    if not arrow:
        counts = {c: "".join(expanded).count(c) for c in "".join(expanded)}
        out = ellipsis[:width] + "".join(sorted(c for c, n in counts.items() if n == 1 and c.islower()))
    else:
        out = out.replace("...", ellipsis[:width])
    return expanded, out


def einsum(cx, *operands, equation):
    """One or two operands with no repeated letter within a term: transposes, sums and one batched matmul.

    For two operands the letters split into batch (in both and the output), contracted (in both, not the
    output) and free ones; a letter in one operand only and not in the output is summed away first.
    """
    terms, out = _einsum_terms(equation, [o.type.rank for o in operands])
    if any(len(set(t)) != len(t) for t in terms) or len(set(out)) != len(out):
        raise UnsupportedOpError(f"Einsum {equation!r} repeats a letter in one term (diagonals) — not supported")
    if len(operands) not in (1, 2):
        raise UnsupportedOpError(f"Einsum of {len(operands)} operands is not supported (1 or 2 are)")
    sizes: dict[str, int] = {}
    for term, operand in zip(terms, operands):
        for letter, size in zip(term, operand.shape):
            if sizes.setdefault(letter, size) != size:
                raise UnsupportedOpError(f"Einsum {equation!r}: letter {letter!r} has sizes {sizes[letter]} and {size}")

    def reduce_to(x: Node, term: str, keep: str) -> tuple[Node, str]:
        drop = tuple(i for i, c in enumerate(term) if c not in keep)
        if not drop:
            return x, term
        return cx.op("sum", x, axes=drop, keepdims=False), "".join(c for c in term if c in keep)

    def arrange(x: Node, term: str, order: str) -> Node:
        perm = tuple(term.index(c) for c in order)
        return x if perm == tuple(range(len(term))) else cx.op("transpose", x, perm=perm)

    if len(operands) == 1:
        (x,), (term,) = operands, terms
        x, term = reduce_to(x, term, out)
        return arrange(x, term, out)
    (a, b), (ta, tb) = operands, terms
    a, ta = reduce_to(a, ta, out + tb)
    b, tb = reduce_to(b, tb, out + ta)
    batch = [c for c in out if c in ta and c in tb]
    contracted = [c for c in ta if c in tb and c not in out]
    free_a = [c for c in ta if c not in tb]
    free_b = [c for c in tb if c not in ta]
    size = lambda letters: math.prod(sizes[c] for c in letters)  # noqa: E731
    a3 = cx.op(
        "reshape",
        arrange(a, ta, "".join(batch + free_a + contracted)),
        shape=(size(batch), size(free_a), size(contracted)),
    )
    b3 = cx.op(
        "reshape",
        arrange(b, tb, "".join(batch + contracted + free_b)),
        shape=(size(batch), size(contracted), size(free_b)),
    )
    product = cx.op("matmul", a3, b3)
    order = batch + free_a + free_b
    y = cx.op("reshape", product, shape=tuple(sizes[c] for c in order))
    return arrange(y, "".join(order), out)


def _ops(newest: Mapping[str, int], converters: Mapping[str, Converter]) -> dict[str, OnnxOp]:
    return {name: OnnxOp(convert, newest[name]) for name, convert in converters.items()}


#: The newest schema version of each op whose spec its converter follows (read against onnx 1.23's
#: `onnx.defs.get_all_schemas_with_history()`; tests/test_adversarial_onnx.py fails when a newer onnx
#: adds a version, so that it is read before it is accepted).
_NEWEST = {
    "Abs": 13, "Add": 14, "AveragePool": 22, "BatchNormalization": 15, "Clip": 13, "Concat": 13, "Constant": 25,
    "Conv": 22, "Div": 14, "Dropout": 22, "Erf": 13, "Exp": 13, "Flatten": 25, "Gelu": 20, "Gemm": 13,
    "GlobalAveragePool": 22, "Identity": 25, "LayerNormalization": 17, "Log": 13, "LogSoftmax": 13, "MatMul": 13,
    "Max": 13, "MaxPool": 22, "Min": 13, "Mul": 14, "Neg": 13, "Pow": 15, "ReduceMax": 20, "ReduceMean": 18,
    "ReduceSum": 13, "Relu": 14, "Reshape": 25, "Sigmoid": 13, "Softmax": 13, "Sqrt": 13, "Squeeze": 25,
    "Sub": 14, "Tanh": 13, "Transpose": 25, "Unsqueeze": 25,
    "Cast": 28, "ConstantOfShape": 25, "ConvTranspose": 22, "DepthToSpace": 28, "Elu": 22, "Expand": 13,
    "Gather": 13, "HardSigmoid": 22, "InstanceNormalization": 22, "LRN": 13, "LeakyRelu": 16, "Mean": 13,
    "Pad": 25, "PRelu": 16, "Range": 27, "Selu": 22, "Shape": 25, "Shrink": 9, "Sign": 13, "Slice": 13,
    "Softplus": 22, "Softsign": 22, "Split": 18, "Sum": 13, "Tile": 13, "Resize": 19, "Upsample": 10,
    "Einsum": 28, "Equal": 19, "Less": 13, "Greater": 13, "LessOrEqual": 16, "GreaterOrEqual": 16, "Not": 1,
    "And": 7, "Or": 7, "Xor": 7, "Where": 16,
}  # fmt: skip

ONNX_OPS: dict[str, OnnxOp] = _ops(
    _NEWEST,
    {
        "Conv": conv,
        "Gemm": gemm,
        "MatMul": matmul,
        "BatchNormalization": batch_norm,
        "LayerNormalization": layer_norm,
        "MaxPool": max_pool,
        "AveragePool": average_pool,
        "GlobalAveragePool": global_average_pool,
        "Relu": relu,
        "Sigmoid": same("sigmoid"),
        "Tanh": same("tanh"),
        "Exp": same("exp"),
        "Log": same("log"),
        "Sqrt": same("sqrt"),
        "Erf": same("erf"),
        "Neg": same("neg"),
        "Abs": same("abs"),
        "Gelu": same("gelu", "approximate"),
        "Clip": clip,
        "Add": _arithmetic("add"),
        "Sub": _arithmetic("sub"),
        "Mul": _arithmetic("mul"),
        "Div": _arithmetic("div"),
        "Pow": _arithmetic("pow"),
        "Max": _variadic("maximum"),
        "Min": _variadic("minimum"),
        "Softmax": _softmax("softmax"),
        "LogSoftmax": _softmax("log_softmax"),
        "Identity": identity,
        "Dropout": dropout,
        "Flatten": flatten,
        "Reshape": reshape,
        "Transpose": transpose,
        "Concat": concat,
        "Constant": constant,
        "ReduceMean": _reduce("mean", 18),
        "ReduceSum": _reduce("sum", 13),
        "ReduceMax": _reduce("max", 18),
        "Unsqueeze": unsqueeze,
        "Squeeze": squeeze,
        "Cast": cast,
        "ConstantOfShape": constant_of_shape,
        "ConvTranspose": conv_transpose,
        "DepthToSpace": depth_to_space,
        "Elu": elu,
        "Expand": expand,
        "Gather": gather,
        "HardSigmoid": hard_sigmoid,
        "InstanceNormalization": instance_norm,
        "LRN": lrn,
        "LeakyRelu": leaky_relu,
        "Mean": _sum_or_mean(mean=True),
        "Pad": pad,
        "PRelu": prelu,
        "Range": range_,
        "Selu": selu,
        "Shape": shape,
        "Shrink": shrink,
        "Sign": sign,
        "Slice": slice_,
        "Softplus": softplus,
        "Softsign": softsign,
        "Split": split,
        "Sum": _sum_or_mean(mean=False),
        "Tile": tile,
        "Resize": resize,
        "Upsample": upsample,
        "Einsum": einsum,
        "Equal": _comparison("equal"),
        "Less": _comparison("less"),
        "Greater": _comparison("greater"),
        "LessOrEqual": _comparison("less_equal"),
        "GreaterOrEqual": _comparison("greater_equal"),
        "Not": same("logical_not"),
        "And": _comparison("logical_and"),
        "Or": _comparison("logical_or"),
        "Xor": _comparison("not_equal"),
        "Where": where,
    },
)
