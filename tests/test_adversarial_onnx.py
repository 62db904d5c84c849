"""ONNX import under fire: each op's meaning per opset checked against onnxruntime, malformed models
and inputs as FrontendErrors naming the file and the problem (issue 11, part C).

References: onnxruntime on the model itself; where onnxruntime has no kernel for an old opset
(Add-6, Concat-1, Reshape-1, ...), onnxruntime on ONNX's own version converter's upgrade of the model.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper, version_converter  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab.frontends import onnx as onnx_frontend  # noqa: E402
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError  # noqa: E402
from mlc_lab.frontends.onnx import ONNX_OPS, from_onnx  # noqa: E402

ort.set_default_logger_severity(3)
RNG = np.random.default_rng(0)
NP_TO_ONNX = {np.float32: T.FLOAT, np.float64: T.DOUBLE, np.int64: T.INT64, np.int32: T.INT32}


# == building and running small models =============================================================
def _info(name: str, array_or_dtype, shape=None) -> onnx.ValueInfoProto:
    if isinstance(array_or_dtype, np.ndarray):
        return h.make_tensor_value_info(name, NP_TO_ONNX[array_or_dtype.dtype.type], list(array_or_dtype.shape))
    return h.make_tensor_value_info(name, NP_TO_ONNX[array_or_dtype], shape)


def _model(nodes, feeds: dict, opset: int, inits: dict | None = None, outputs=None, out_dtype=None) -> onnx.ModelProto:
    """One graph over `feeds` (graph inputs) and `inits` (initializers); outputs default to the last node's."""
    out_dtype = out_dtype or next(iter(feeds.values())).dtype.type
    outputs = outputs or [h.make_tensor_value_info(o, NP_TO_ONNX[out_dtype], None) for o in nodes[-1].output if o]
    graph = h.make_graph(
        nodes,
        "case",
        [_info(k, v) for k, v in feeds.items()],
        outputs,
        initializer=[numpy_helper.from_array(v, k) for k, v in (inits or {}).items()],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8
    return model


def _onnxruntime(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime has no kernels for some opsets below 7: upgrade with ONNX's converter
        if "NOT_IMPLEMENTED" not in str(e) and "Could not find an implementation" not in str(e):
            raise
        upgraded = version_converter.convert_version(model, 13)
        session = ort.InferenceSession(upgraded.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _check(model: onnx.ModelProto, feeds: dict, backend: str = "interpreter", atol: float = 1e-5) -> None:
    reference = _onnxruntime(model, feeds)
    ours = mlc_lab.compile(model, backend=backend, passes="none" if backend == "interpreter" else "default")
    got = ours(*feeds.values())
    got = list(got) if isinstance(got, tuple) else [got]
    assert len(got) == len(reference)
    for g, r in zip(got, reference):
        assert g.dtype == r.dtype and g.shape == r.shape, (g.dtype, g.shape, r.dtype, r.shape)
        np.testing.assert_allclose(g, r, atol=atol, rtol=1e-5)


def _x(*shape, dtype=np.float32) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def _node(op: str, inputs, outputs=("y",), **attrs) -> onnx.NodeProto:
    return h.make_node(op, list(inputs), list(outputs), name=f"my_{op.lower()}", **attrs)


# == semantics per opset, against onnxruntime ======================================================
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize(
    "opset,axis",
    [(1, None), (1, 0), (1, 2), (11, None), (11, -2), (11, 0), (13, None), (13, 1), (13, -3)],
)
def test_softmax_family_per_opset(op: str, opset: int, axis: int | None) -> None:
    """Before 13: flatten to 2-D at `axis` (default 1) and normalise the whole tail; from 13: one axis."""
    attrs = {} if axis is None else {"axis": axis}
    x = _x(2, 3, 4)
    _check(_model([_node(op, ["x"], **attrs)], {"x": x}, opset), {"x": x})


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
@pytest.mark.parametrize("opset", [7, 13, 14])
def test_integer_div_truncates_toward_zero(dtype, opset: int) -> None:
    a = np.array([-7, 7, -7, 7, 0, -1, 9, -9], dtype)
    b = np.array([2, 2, -2, -2, 3, 5, -4, 4], dtype)
    model = _model([_node("Div", ["a", "b"])], {"a": a, "b": b}, opset)
    _check(model, {"a": a, "b": b})
    assert mlc_lab.compile(model, backend="interpreter")(a, b)[0] == -3  # -7 / 2, not floor's -4


def test_integer_div_broadcasts_and_float_div_is_plain() -> None:
    a = np.arange(-6, 6, dtype=np.int64).reshape(3, 4)
    b = np.array([5, -3, 2, -7], np.int64)
    _check(_model([_node("Div", ["a", "b"])], {"a": a, "b": b}, 13), {"a": a, "b": b})
    x, d = _x(3, 4), _x(4) + 3
    _check(_model([_node("Div", ["x", "d"])], {"x": x, "d": d}, 13), {"x": x, "d": d})


@pytest.mark.parametrize(
    "opset,attrs",
    [(1, {"min": -0.5, "max": 0.5}), (1, {"max": 0.2}), (1, {}), (6, {"min": -0.5, "max": 0.5}), (6, {"min": 0.1})],
)
def test_clip_attributes_before_11(opset: int, attrs: dict) -> None:
    x = np.concatenate([_x(6), [np.inf, -np.inf]]).astype(np.float32)  # version 6's defaults are +-FLT_MAX
    _check(_model([_node("Clip", ["x"], **attrs)], {"x": x}, opset), {"x": x})


@pytest.mark.parametrize("opset", [11, 12, 13])
@pytest.mark.parametrize("bounds", [("lo", "hi"), ("lo", ""), ("", "hi"), ("big", "lo")])
def test_clip_inputs_from_11(opset: int, bounds) -> None:
    """Bounds are optional scalar inputs; a minimum above the maximum gives the maximum everywhere."""
    x = _x(3, 4)
    inits = {"lo": np.float32(-0.3), "hi": np.float32(0.6), "big": np.float32(2.0)}
    used = {k: v for k, v in inits.items() if k in bounds}
    _check(_model([_node("Clip", ["x", *bounds])], {"x": x}, opset, used), {"x": x})


def test_integer_clip() -> None:
    x = np.arange(-5, 5, dtype=np.int32)
    inits = {"lo": np.int32(-2), "hi": np.int32(3)}
    _check(_model([_node("Clip", ["x", "lo", "hi"])], {"x": x}, 13, inits), {"x": x})


@pytest.mark.parametrize(
    "op,opset,axes,attrs",
    [
        ("ReduceSum", 11, [-1], {}),
        ("ReduceSum", 11, None, {"keepdims": 0}),
        ("ReduceSum", 13, [0, 2], {"keepdims": 0}),
        ("ReduceSum", 13, None, {}),
        ("ReduceSum", 13, [], {"noop_with_empty_axes": 1}),
        ("ReduceSum", 13, None, {"noop_with_empty_axes": 1}),
        ("ReduceMean", 13, [1], {}),
        ("ReduceMean", 18, [-2], {"keepdims": 0}),
        ("ReduceMean", 18, None, {"noop_with_empty_axes": 1}),
        ("ReduceMax", 1, [0], {}),
        ("ReduceMax", 18, [1, 2], {}),
        ("ReduceMax", 20, None, {"keepdims": 0}),
        ("ReduceSum", 11, [-1, 2, 0], {}),  # an axis named twice is reduced once
    ],
)
def test_reduce_axes_attribute_or_input(op: str, opset: int, axes, attrs: dict) -> None:
    """Axes are an attribute before 13 (ReduceSum) / 18 (the others), an input after."""
    x = _x(2, 3, 4)
    as_input = opset >= (13 if op == "ReduceSum" else 18)
    inits = {}
    if as_input and axes is not None:
        inits["axes"] = np.array(axes, np.int64)
        node = _node(op, ["x", "axes"], **attrs)
    else:
        node = _node(op, ["x"], **attrs, **({} if axes is None else {"axes": axes}))
    _check(_model([node], {"x": x}, opset, inits), {"x": x})


@pytest.mark.parametrize("opset,axes", [(1, [0]), (1, None), (11, [-1]), (11, None), (13, [0, -1]), (13, None)])
def test_squeeze_axes_attribute_or_input(opset: int, axes) -> None:
    """Negative axes arrive in opset 11."""
    x = _x(1, 3, 1)
    if opset >= 13 and axes is not None:
        node, inits = _node("Squeeze", ["x", "axes"]), {"axes": np.array(axes, np.int64)}
    else:
        node, inits = _node("Squeeze", ["x"], **({} if axes is None else {"axes": axes})), {}
    _check(_model([node], {"x": x}, opset, inits), {"x": x})


@pytest.mark.parametrize("opset,axes", [(1, [0]), (1, [3, 0]), (11, [1, -1]), (13, [0]), (13, [1, -1]), (13, [3, 0])])
def test_unsqueeze_axes_attribute_or_input(opset: int, axes) -> None:
    x = _x(2, 3)
    if opset >= 13:
        node, inits = _node("Unsqueeze", ["x", "axes"]), {"axes": np.array(axes, np.int64)}
    else:
        node, inits = _node("Unsqueeze", ["x"], axes=axes), {}
    _check(_model([node], {"x": x}, opset, inits), {"x": x})


@pytest.mark.parametrize(
    "opset,attrs,c_shape",
    [
        (13, {}, (5,)),
        (13, {"transA": 1, "transB": 1}, (1, 5)),
        (13, {"alpha": 0.5, "beta": 2.0}, (4, 1)),
        (13, {"alpha": 2.0, "transB": 1}, ()),
        (13, {"beta": 0.0}, (4, 5)),
        (11, {"transA": 1}, None),
        (7, {}, (5,)),
        (6, {"broadcast": 1}, (5,)),
        (6, {}, (4, 5)),
    ],
)
def test_gemm(opset: int, attrs: dict, c_shape) -> None:
    a = _x(3, 4) if attrs.get("transA") else _x(4, 3)
    b = _x(5, 3) if attrs.get("transB") else _x(3, 5)
    inits = {"b": b} if c_shape is None else {"b": b, "c": _x(*c_shape)}
    node = _node("Gemm", ["a", "b"] + ([] if c_shape is None else ["c"]), **attrs)
    _check(_model([node], {"a": a}, opset, inits), {"a": a})


@pytest.mark.parametrize("opset,axis", [(1, 0), (1, 2), (1, 3), (11, -1), (11, -3), (13, 3), (21, 1)])
def test_flatten_axis(opset: int, axis: int) -> None:
    """axis may equal the rank (second dimension 1); negative from 11."""
    x = _x(2, 3, 4)
    _check(_model([_node("Flatten", ["x"], axis=axis)], {"x": x}, opset), {"x": x})


@pytest.mark.parametrize("opset,attrs", [(1, {}), (4, {"axis": 0}), (11, {"axis": -1}), (13, {"axis": -2})])
def test_concat_axis(opset: int, attrs: dict) -> None:
    """Before 4 the axis defaults to 1."""
    x, z = _x(2, 3), _x(2, 3)
    _check(_model([_node("Concat", ["x", "z"], **attrs)], {"x": x, "z": z}, opset), {"x": x, "z": z})


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("b_shape,attrs", [((2, 3, 4), {}), ((4,), {"broadcast": 1}), ((3, 1), {"broadcast": 1})])
def test_legacy_broadcast_before_7(op: str, b_shape, attrs: dict) -> None:
    """Before 7, B broadcasts only with broadcast=1 (and then, without `axis`, as a suffix of A's shape)."""
    x, b = _x(2, 3, 4), _x(*b_shape) + 3
    _check(_model([_node(op, ["x", "b"], **attrs)], {"x": x, "b": b}, 6), {"x": x, "b": b})


@pytest.mark.parametrize("opset", [1, 6])
def test_legacy_broadcast_axis_aligns_b_at_that_axis(opset: int) -> None:
    """The spec's own example: A (2, 3, 4, 5) and B (3, 4) with axis=1 give A + B[None, :, :, None].

    Neither onnxruntime (no Add-6 kernel) nor ONNX's version converter (it rejects this case) can check
    it, so the reference is that formula.
    """
    x, b = _x(2, 3, 4, 5), _x(3, 4)
    model = _model([_node("Add", ["x", "b"], broadcast=1, axis=1)], {"x": x, "b": b}, opset)
    np.testing.assert_array_equal(mlc_lab.compile(model, backend="interpreter")(x, b), x + b[None, :, :, None])


@pytest.mark.parametrize("op", ["Max", "Min"])
@pytest.mark.parametrize("opset", [6, 8, 13])
def test_variadic_max_min(op: str, opset: int) -> None:
    shapes = [(2, 3), (2, 3), (2, 3)] if opset < 8 else [(2, 3), (3,), (2, 1)]
    feeds = {f"x{i}": _x(*s) for i, s in enumerate(shapes)}
    _check(_model([_node(op, list(feeds))], feeds, opset), feeds)
    one = {"x0": feeds["x0"]}
    _check(_model([_node(op, ["x0"])], one, opset), one)


@pytest.mark.parametrize(
    "op,attrs",
    [
        ("MaxPool", {"kernel_shape": [3, 3]}),  # ONNX strides default to 1, not to the kernel
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
        ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}),
        ("MaxPool", {"kernel_shape": [2, 2], "dilations": [2, 2], "pads": [1, 1, 1, 1]}),
        ("AveragePool", {"kernel_shape": [3, 3]}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
        ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
        (
            "AveragePool",
            {"kernel_shape": [3, 2], "strides": [2, 3], "pads": [1, 0, 1, 1], "count_include_pad": 1, "ceil_mode": 1},
        ),
        (
            "MaxPool",
            {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 1], "dilations": [2, 1], "ceil_mode": 1},
        ),
        ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ],
)
def test_pooling(op: str, attrs: dict) -> None:
    x = _x(1, 2, 7, 7)
    _check(_model([_node(op, ["x"], **attrs)], {"x": x}, 19), {"x": x})


def test_ceil_mode_pooling_where_onnx_shape_inference_keeps_an_extra_window() -> None:
    """ONNX's shape inference says 4 rows here; the spec and onnxruntime drop the window that would start
    past the input (3 rows). The converter follows onnxruntime, downstream nodes included."""
    x = _x(1, 2, 8, 4)
    nodes = [_node("AveragePool", ["x"], ["p"], kernel_shape=[1, 1], strides=[3, 3], ceil_mode=1), _node("Relu", ["p"])]
    _check(_model(nodes, {"x": x}, 19), {"x": x})
    nodes = [_node("MaxPool", ["x"], ["p"], kernel_shape=[1, 2], strides=[3, 3], auto_pad="VALID", ceil_mode=1)]
    _check(_model([*nodes, _node("Neg", ["p"])], {"x": x}, 19), {"x": x})


@pytest.mark.parametrize(
    "attrs,match",
    [
        ({"kernel_shape": [2, 2], "auto_pad": "SAME_UPPER", "dilations": [2, 2]}, "SAME_UPPER with dilations"),
        ({"kernel_shape": [1, 2], "strides": [2, 2], "auto_pad": "SAME_LOWER"}, "stride 2 longer than the kernel 1"),
    ],
)
def test_pooling_where_onnxruntime_departs_from_the_spec_is_refused(attrs: dict, match: str) -> None:
    with pytest.raises(FrontendError, match=match):
        from_onnx(_model([_node("MaxPool", ["x"], **attrs)], {"x": _x(1, 2, 6, 6)}, 19))


@pytest.mark.parametrize("auto_pad,strides", [("SAME_UPPER", [2, 2]), ("SAME_LOWER", [2, 2]), ("VALID", [1, 2])])
def test_conv_auto_pad(auto_pad: str, strides) -> None:
    x, w, b = _x(1, 2, 6, 7), _x(4, 2, 3, 2), _x(4)
    node = _node("Conv", ["x", "w", "b"], auto_pad=auto_pad, strides=strides)
    _check(_model([node], {"x": x}, 11, {"w": w, "b": b}), {"x": x}, atol=1e-4)


@pytest.mark.parametrize("opset,shape", [(7, (2, 3)), (9, (2, 3, 4, 4)), (15, (2, 3, 5))])
def test_batch_norm(opset: int, shape) -> None:
    x = _x(*shape)
    inits = {"s": _x(3), "b": _x(3), "m": _x(3), "v": np.abs(_x(3)) + 0.5}
    _check(
        _model([_node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)], {"x": x}, opset, inits), {"x": x}
    )


def test_batch_norm_is_test_before_7() -> None:
    x = _x(2, 3, 4, 4)
    inits = {"s": _x(3), "b": _x(3), "m": _x(3), "v": np.abs(_x(3)) + 0.5}
    model = _model([_node("BatchNormalization", ["x", "s", "b", "m", "v"], is_test=1)], {"x": x}, 6, inits)
    _check(model, {"x": x})


@pytest.mark.parametrize("axis,scale_shape", [(-1, (4,)), (1, (3, 4)), (1, (1, 4))])
def test_layer_norm(axis: int, scale_shape) -> None:
    x = _x(2, 3, 4)
    node = _node("LayerNormalization", ["x", "s", "b"], axis=axis)
    _check(_model([node], {"x": x}, 17, {"s": _x(*scale_shape), "b": _x(*scale_shape)}), {"x": x}, atol=1e-4)


@pytest.mark.parametrize(
    "opset,shape,attrs",
    [(13, [0, -1], {}), (13, [4, 0, -1], {}), (14, [3, 0, 8], {"allowzero": 1}), (1, [-1, 6], {}), (5, [2, 12], {})],
)
def test_reshape(opset: int, shape, attrs: dict) -> None:
    """0 copies the input's dimension (unless allowzero=1); the shape is an attribute before 5."""
    x = _x(4, 6) if not attrs else np.zeros((3, 0, 8), np.float32)
    if opset < 5:
        node, inits = _node("Reshape", ["x"], shape=shape), {}
    else:
        node, inits = _node("Reshape", ["x", "shape"], **attrs), {"shape": np.array(shape, np.int64)}
    _check(_model([node], {"x": x}, opset, inits), {"x": x})


@pytest.mark.parametrize(
    "a_shape,b_shape", [((3,), (3, 4)), ((2, 3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))]
)
def test_matmul_numpy_semantics(a_shape, b_shape) -> None:
    a, b = _x(*a_shape), _x(*b_shape)
    _check(_model([_node("MatMul", ["a", "b"])], {"a": a, "b": b}, 13), {"a": a, "b": b}, atol=1e-5)


def test_pow_with_an_exponent_of_another_type() -> None:
    x, e = np.abs(_x(2, 3)) + 0.1, np.array([1, 2, 3], np.int64)
    _check(_model([_node("Pow", ["x", "e"])], {"x": x, "e": e}, 15), {"x": x, "e": e})


@pytest.mark.parametrize(
    "attrs,dtype",
    [({"value_float": 2.5}, np.float32), ({"value_ints": [1, -2, 3]}, np.int64), ({"value_int": 7}, np.int64)],
)
def test_constant_value_attributes(attrs: dict, dtype) -> None:
    feeds = {"x": np.ones(3, dtype)}
    nodes = [_node("Constant", [], ["c"], **attrs), _node("Add", ["x", "c"])]
    _check(_model(nodes, feeds, 13), feeds)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_relu_of_every_type_from_14(dtype) -> None:
    x = (_x(3, 4) * 10).astype(dtype)
    _check(_model([_node("Relu", ["x"])], {"x": x}, 14), {"x": x})


def test_int64_relu() -> None:
    """onnxruntime has no int64 Relu kernel: the reference is the spec's max(x, 0)."""
    x = np.arange(-3, 3, dtype=np.int64)
    got = mlc_lab.compile(_model([_node("Relu", ["x"])], {"x": x}, 14), backend="interpreter")(x)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, np.maximum(x, 0))


def test_global_average_pool_any_rank_and_defaults() -> None:
    x = _x(2, 3, 5)
    _check(_model([_node("GlobalAveragePool", ["x"])], {"x": x}, 13), {"x": x})
    y = _x(2, 3, 4)
    _check(_model([_node("Transpose", ["x"])], {"x": y}, 13), {"x": y})
    _check(_model([_node("Dropout", ["x"])], {"x": y}, 13), {"x": y})


def test_unsorted_graph_is_sorted() -> None:
    """ONNX wants topological order; onnxruntime accepts any DAG, and so do we."""
    x = _x(2, 3)
    nodes = [_node("Relu", ["a"], ["y"]), _node("Neg", ["x"], ["a"])]
    _check(_model(nodes, {"x": x}, 13, outputs=[_info("y", np.float32, None)]), {"x": x})


# == the same semantics on TVM, where a kernel could still floor or coerce differently ==============
_I64 = np.array([-7, 7, -7, 7, 0, -1, 9, -9], np.int64), np.array([2, 2, -2, -2, 3, 5, -4, 4], np.int64)
_BN = {"s": _x(3), "b": _x(3), "m": _x(3), "v": np.abs(_x(3)) + 0.5}
_ON_TVM = {  # one model per converter whose meaning depends on the opset or the dtype
    "div-int64": lambda: ([_node("Div", ["a", "b"])], dict(zip("ab", _I64)), 13, {}),
    "div-int32": lambda: ([_node("Div", ["a", "b"])], {k: v.astype(np.int32) for k, v in zip("ab", _I64)}, 7, {}),
    "softmax-11": lambda: ([_node("Softmax", ["x"])], {"x": _x(2, 3, 4)}, 11, {}),
    "logsoftmax-1-axis0": lambda: ([_node("LogSoftmax", ["x"], axis=0)], {"x": _x(2, 3, 4)}, 1, {}),
    "softmax-13": lambda: ([_node("Softmax", ["x"], axis=1)], {"x": _x(2, 3, 4)}, 13, {}),
    "clip-6": lambda: ([_node("Clip", ["x"], min=-0.5)], {"x": _x(3, 4)}, 6, {}),
    "clip-13-min-above-max": lambda: (
        [_node("Clip", ["x", "lo", "hi"])],
        {"x": _x(3, 4)},
        13,
        {"lo": np.float32(1), "hi": np.float32(0.5)},
    ),
    "add-6-broadcast": lambda: ([_node("Add", ["x", "b"], broadcast=1)], {"x": _x(2, 3, 4), "b": _x(4)}, 6, {}),
    "gemm-6": lambda: (
        [_node("Gemm", ["a", "b", "c"], broadcast=1, transA=1, alpha=0.5, beta=2.0)],
        {"a": _x(4, 3)},
        6,
        {"b": _x(4, 5), "c": _x(5)},
    ),
    "maxpool-ceil": lambda: (
        [_node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 1], ceil_mode=1)],
        {"x": _x(1, 2, 8, 7)},
        12,
        {},
    ),
    "avgpool-include-pad": lambda: (
        [_node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],
        {"x": _x(1, 2, 6, 6)},
        11,
        {},
    ),
    "reducesum-13-noop": lambda: (
        [_node("ReduceSum", ["x", "a"], noop_with_empty_axes=1)],
        {"x": _x(2, 3)},
        13,
        {"a": np.zeros(0, np.int64)},
    ),
    "reducemean-18": lambda: ([_node("ReduceMean", ["x", "a"])], {"x": _x(2, 3, 4)}, 18, {"a": np.array([-1, 0])}),
    "batchnorm-7": lambda: ([_node("BatchNormalization", ["x", "s", "b", "m", "v"])], {"x": _x(2, 3)}, 7, _BN),
    "matmul-1d": lambda: ([_node("MatMul", ["a", "b"])], {"a": _x(3), "b": _x(2, 3, 4)}, 13, {}),
    "flatten-axis-rank": lambda: ([_node("Flatten", ["x"], axis=3)], {"x": _x(2, 3, 4)}, 13, {}),
    "relu-int32": lambda: ([_node("Relu", ["x"])], {"x": np.arange(-3, 3, dtype=np.int32)}, 14, {}),
    "pow-int-exponent": lambda: ([_node("Pow", ["x", "e"])], {"x": _x(3) + 2, "e": np.array([1, 2, 3])}, 15, {}),
}


@pytest.mark.parametrize("case", list(_ON_TVM))
@pytest.mark.filterwarnings("ignore")
def test_tvm_agrees_with_onnxruntime(case: str) -> None:
    pytest.importorskip("tvm")
    nodes, feeds, opset, inits = _ON_TVM[case]()
    _check(_model(nodes, feeds, opset, inits), feeds, backend="tvm", atol=1e-4)


# == the onnx wheel's own operator cases that used to crash ========================================
_DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "pytorch-operator")


@pytest.mark.parametrize(
    "case,backend",
    [
        ("test_operator_clip", "interpreter"),
        ("test_operator_clip", "tvm"),
        ("test_operator_non_float_params", "interpreter"),
        ("test_operator_non_float_params", "tvm"),
        ("test_operator_add_broadcast", "interpreter"),
        ("test_operator_addmm", "interpreter"),
    ],
)
@pytest.mark.filterwarnings("ignore")
def test_backend_data_cases(case: str, backend: str) -> None:
    if backend == "tvm":
        pytest.importorskip("tvm")
    folder = os.path.join(_DATA, case)
    load = lambda pattern: [  # noqa: E731
        numpy_helper.to_array(onnx.load_tensor(p))
        for p in sorted(glob.glob(os.path.join(folder, "test_data_set_0", pattern)))
    ]
    inputs, expected = load("input_*.pb"), load("output_*.pb")
    got = mlc_lab.compile(os.path.join(folder, "model.onnx"), backend=backend)(*inputs)
    got = list(got) if isinstance(got, tuple) else [got]
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, atol=1e-5)


# == unsupported ops and variants: errors naming op, node and opset ================================
@pytest.mark.parametrize(
    "nodes,inits,opset,match",
    [
        (
            [_node("BatchNormalization", ["x", "s", "s", "s", "s"], spatial=0)],
            {"s": np.ones(3, np.float32)},
            7,
            "spatial=0",
        ),
        (
            [_node("BatchNormalization", ["x", "s", "s", "s", "s"], training_mode=1)],
            {"s": np.ones(3, np.float32)},
            15,
            "training mode",
        ),
        ([_node("BatchNormalization", ["x", "s", "s", "s", "s"])], {"s": np.ones(3, np.float32)}, 6, "training mode"),
        ([_node("Dropout", ["x", "", "t"])], {"t": np.array(True)}, 13, "training mode"),
        ([_node("Dropout", ["x"])], {}, 6, "is_test=0"),
        ([_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2])], {}, 13, r"output \['idx'\]"),
        ([_node("AveragePool", ["x"], kernel_shape=[2, 2], dilations=[2, 2])], {}, 19, "dilations"),
        ([_node("LayerNormalization", ["x", "s"], ["y", "mean"])], {"s": np.ones(6, np.float32)}, 17, r"\['mean'\]"),
        ([_node("Constant", [], ["y"], value_string="hi")], {}, 13, "string Constant"),
        ([_node("Relu", ["x"], my_attribute=1)], {}, 13, r"attribute 'my_attribute' is not in the spec of Relu-13"),
        ([_node("Softmax", ["x"], axis="1")], {}, 13, r"attribute 'axis' is a STRING; the spec wants INT"),
        ([_node("Gemm", ["x", "x"], alpha=2)], {}, 13, r"attribute 'alpha' is a INT; the spec wants FLOAT"),
        ([_node("Squeeze", ["x"], axes=[1])], {}, 11, "size is not 1"),
        ([_node("Add", ["x", "b"])], {"b": np.ones(6, np.float32)}, 6, "broadcast=0"),
        ([_node("Softmax", ["x"], axis=4)], {}, 11, "axis 4 is out of range"),
        ([_node("Reshape", ["x", "x"])], {}, 13, "Reshape's shape must be a constant"),
    ],
)
def test_unsupported_variant_is_a_frontend_error(nodes, inits, opset: int, match: str) -> None:
    x = _x(2, 3, 4, 6)
    model = _model(nodes, {"x": x}, opset, inits)
    with pytest.raises(FrontendError, match=match) as info:
        from_onnx(model)
    message = str(info.value)
    assert f"at opset {opset}" in message and f"ONNX {nodes[-1].op_type}" in message and "'my_" in message


def test_op_missing_at_the_models_opset() -> None:
    x = _x(2, 3)
    with pytest.raises(
        UnsupportedOpError, match=r"ONNX Gelu: the op does not exist at opset 17 \(1 node: 'my_gelu' -> 'y'\)"
    ):
        from_onnx(_model([_node("Gelu", ["x"])], {"x": x}, 17))


def test_every_unsupported_op_is_listed_at_once() -> None:
    x = _x(2, 3)
    nodes = [_node("CumSum", ["x", "x"], ["a"]), _node("Relu", ["a"], ["b"]), _node("Hardmax", ["b"])]
    with pytest.raises(UnsupportedOpError, match=r"(?s)opset 13.*ONNX CumSum.*'my_cumsum'.*ONNX Hardmax.*'my_hardmax'"):
        from_onnx(_model(nodes, {"x": x}, 13))


def test_many_unsupported_nodes_are_summarised_per_op() -> None:
    x = _x(2, 3)
    nodes = [_node("Hardmax", ["x"], [f"h{i}"]) for i in range(5)] + [_node("Relu", ["h0"])]
    with pytest.raises(
        UnsupportedOpError, match=r"ONNX Hardmax: no converter \(5 nodes: 'my_hardmax' -> 'h0', .*and 2 more\)"
    ):
        from_onnx(_model(nodes, {"x": x}, 13))


def test_a_version_newer_than_the_converter_is_refused(monkeypatch) -> None:
    """Pretend Softmax's converter was last checked at version 11: a Softmax-13 model must not import."""
    monkeypatch.setitem(ONNX_OPS, "Softmax", onnx_frontend.OnnxOp(ONNX_OPS["Softmax"].convert, 11))
    x = _x(2, 3)
    with pytest.raises(
        UnsupportedOpError,
        match=r"ONNX Softmax: version 13 \(at opset 13\) is newer.* up to version 11 \(1 node: 'my_softmax'",
    ):
        from_onnx(_model([_node("Softmax", ["x"])], {"x": x}, 13))
    from_onnx(_model([_node("Softmax", ["x"])], {"x": x}, 12))  # version 11 is still fine


def test_converters_follow_the_newest_schema_the_onnx_package_knows() -> None:
    """When a new onnx release adds a version of a supported op, read its spec, then raise `newest`."""
    history: dict[str, int] = {}
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain == "" and schema.name in ONNX_OPS:
            history[schema.name] = max(history.get(schema.name, 0), schema.since_version)
    assert {op: entry.newest for op, entry in ONNX_OPS.items()} == history


# == malformed files and graphs ====================================================================
def _relu_model() -> onnx.ModelProto:
    return _model([_node("Relu", ["x"])], {"x": _x(2, 3)}, 13)


def test_missing_empty_truncated_and_random_files(tmp_path) -> None:
    with pytest.raises(FrontendError, match=r"ONNX file '.*nope.onnx' does not exist"):
        from_onnx(tmp_path / "nope.onnx")
    with pytest.raises(FrontendError, match=r"ONNX file '.*' is not a file"):
        from_onnx(tmp_path)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(FrontendError, match=r"empty.onnx' is empty \(0 bytes\)"):
        mlc_lab.compile(empty, backend="interpreter")
    data = _relu_model().SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(FrontendError, match=r"truncated.onnx' is not a valid ONNX model: protobuf cannot parse it"):
        from_onnx(truncated)
    parses = tmp_path / "parses.onnx"
    parses.write_bytes(b"\x08\x07")  # a valid protobuf (ir_version = 7) and nothing else
    with pytest.raises(FrontendError, match=r"parses.onnx' holds no graph"):
        from_onnx(parses)
    for seed in range(8):
        noise = tmp_path / f"random{seed}.onnx"
        noise.write_bytes(np.random.default_rng(seed).bytes(256))
        with pytest.raises(FrontendError, match=rf"ONNX file '.*random{seed}.onnx'"):
            from_onnx(noise)


def test_model_without_graph_outputs_or_opset() -> None:
    with pytest.raises(FrontendError, match="holds no graph"):
        from_onnx(onnx.ModelProto())
    no_outputs = _relu_model()
    del no_outputs.graph.output[:]
    with pytest.raises(FrontendError, match="declares no outputs"):
        from_onnx(no_outputs)
    no_opset = _relu_model()
    del no_opset.opset_import[:]
    with pytest.raises(FrontendError, match="imports no opset"):
        from_onnx(no_opset)
    future = _relu_model()
    future.opset_import[0].version = 999
    with pytest.raises(FrontendError, match="uses opset 999"):
        from_onnx(future)


@pytest.mark.parametrize(
    "nodes,outputs,match",
    [
        ([_node("Relu", ["nothing"])], ["y"], r"ONNX Relu \(node 'my_relu'.*reads 'nothing', which no node"),
        ([_node("Relu", ["b"], ["a"]), _node("Neg", ["a"], ["b"])], ["a"], r"cycle.*ONNX Relu.*ONNX Neg"),
        ([_node("Relu", ["x"])], ["y", "z"], r"graph output 'z' is never produced"),
        (
            [_node("Relu", ["x"]), _node("Neg", ["x"])],
            ["y"],
            r"value 'y' is produced twice: by ONNX Relu.* and by ONNX Neg",
        ),
        ([_node("Relu", ["x"], ["x"])], ["x"], r"value 'x' is produced twice: by a graph input"),
        ([_node("Relu", ["x"])], ["y", "y"], r"graph output 'y' is listed twice"),
    ],
)
def test_broken_graph_structure(nodes, outputs, match: str) -> None:
    model = _model(nodes, {"x": _x(2, 3)}, 13, outputs=[_info(o, np.float32, None) for o in outputs])
    with pytest.raises(FrontendError, match=r"ONNX model 'case'.*" + match):
        from_onnx(model)


@pytest.mark.parametrize(
    "declared,match",
    [
        (_info("y", np.float32, [5]), r"graph output 'y': it computes shape \[2, 3\] .* but the model declares \[5\]"),
        (_info("y", np.int64, [2, 3]), r"graph output 'y': it computes dtype float32 .* but the model declares int64"),
    ],
)
def test_wrongly_declared_graph_output(declared, match: str) -> None:
    with pytest.raises(FrontendError, match=match):
        from_onnx(_model([_node("Relu", ["x"])], {"x": _x(2, 3)}, 13, outputs=[declared]))


def test_malformed_file_through_compile_names_the_file(tmp_path) -> None:
    model = _model([_node("Relu", ["nothing"])], {"x": _x(2, 3)}, 13)
    path = tmp_path / "broken.onnx"
    onnx.save(model, path)
    with pytest.raises(FrontendError, match=r"ONNX file '.*broken.onnx'.*reads 'nothing'"):
        mlc_lab.compile(path, backend="interpreter")


# == inputs: shapes and types ======================================================================
def _relu_on(value_info: onnx.ValueInfoProto) -> onnx.ModelProto:
    graph = h.make_graph([_node("Relu", [value_info.name])], "case", [value_info], [_info("y", np.float32, None)])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])


def test_shapeless_and_unknown_dimension_inputs_are_errors() -> None:
    """An input without a shape used to import as a scalar."""
    with pytest.raises(FrontendError, match=r"input 'x' has no shape \(its rank is unknown\).*input_shapes"):
        from_onnx(_relu_on(h.make_tensor_value_info("x", T.FLOAT, None)))
    unknown = h.make_tensor_value_info("x", T.FLOAT, [2, 3])
    unknown.type.tensor_type.shape.dim[1].Clear()  # neither a value nor a name
    with pytest.raises(FrontendError, match=r"input 'x' has a symbolic dimension \? at axis 1.*input_shapes"):
        from_onnx(_relu_on(unknown))
    scalar = from_onnx(_relu_on(h.make_tensor_value_info("x", T.FLOAT, [])))  # a real 0-d input is fine
    assert scalar.inputs[0].shape == ()


def test_non_tensor_and_unsupported_dtype_inputs() -> None:
    sequence = h.make_tensor_sequence_value_info("x", T.FLOAT, [2])
    with pytest.raises(FrontendError, match=r"input 'x' is a sequence_type, not a tensor"):
        from_onnx(_relu_on(sequence))
    with pytest.raises(FrontendError, match=r"input 'x' has element type UINT16"):
        from_onnx(_relu_on(h.make_tensor_value_info("x", T.UINT16, [2])))


def test_input_shapes_through_compile_on_interpreter_and_tvm() -> None:
    model = _relu_on(h.make_tensor_value_info("x", T.FLOAT, ["batch", 4]))
    with pytest.raises(FrontendError, match=r"symbolic dimension batch at axis 0.*input_shapes=\{'x'"):
        mlc_lab.compile(model, backend="interpreter")
    x = _x(3, 4)
    for backend in ("interpreter", "tvm"):
        if backend == "tvm" and not _has("tvm"):
            continue
        compiled = mlc_lab.compile(model, backend=backend, input_shapes={"x": (3, 4)})
        np.testing.assert_array_equal(compiled(x), np.maximum(x, 0))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"  # the caller's model is untouched
    shapeless = _relu_on(h.make_tensor_value_info("x", T.FLOAT, None))
    np.testing.assert_array_equal(
        mlc_lab.compile(shapeless, backend="interpreter", input_shapes={"x": [3, 4]})(x), np.maximum(x, 0)
    )


def test_input_shapes_flow_through_shape_inference() -> None:
    """Downstream shapes are inferred from the given shapes, so the converters' checks still apply."""
    nodes = [_node("Flatten", ["x"], ["f"]), _node("Relu", ["f"])]
    graph = h.make_graph(
        nodes, "case", [h.make_tensor_value_info("x", T.FLOAT, ["n", 2, 3])], [_info("y", np.float32, None)]
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    assert from_onnx(model, input_shapes={"x": (5, 2, 3)}).outputs[0].shape == (5, 6)


@pytest.mark.parametrize(
    "shapes,match",
    [
        ({"z": (1, 4)}, r"input_shapes names \['z'\], which are not graph inputs; the inputs are 'x'"),
        ({"w": (4,)}, r"input_shapes names \['w'\], which are initializers"),
        ({"x": (2, 4, 1)}, r"has rank 3, but the model declares 'x' with rank 2"),
        ({"x": (2, 5)}, r"contradicts the model's static dimension 4 at axis 1"),
        ({"x": (-1, 4)}, r"must hold non-negative ints"),
        ({"x": 3}, r"must be a sequence of ints"),
    ],
)
def test_bad_input_shapes(shapes: dict, match: str) -> None:
    graph = h.make_graph(
        [_node("Add", ["x", "w"])],
        "case",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
        [_info("y", np.float32, None)],
        initializer=[numpy_helper.from_array(np.ones(4, np.float32), "w")],
    )
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 13)])
    with pytest.raises(FrontendError, match=match):
        from_onnx(model, input_shapes=shapes)


def test_input_shapes_is_for_onnx_models_only() -> None:
    from mlc_lab.ir.builder import GraphBuilder

    b = GraphBuilder("g")
    graph = b.build(b.op("relu", b.input("x", (2,))))
    with pytest.raises(ValueError, match="input_shapes applies to ONNX models only"):
        mlc_lab.compile(graph, backend="interpreter", input_shapes={"x": (2,)})


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True
