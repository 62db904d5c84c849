"""Bad input in every frontend: dynamic dimensions and unsupported ops are refused by name, up front.

The IR has static shapes, so a dynamic dimension (a `torch.export.Dim`, an ONNX `dim_param`, a
`None` in a tf.function's signature) is an error naming the input, the axis and how to fix it; each
fix is then shown to work, equal to the framework. A model with ops no converter handles fails
before any op is converted, with every missing op and where it is used in one message.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

pytest.importorskip("mlc_lab.frontends.tensorflow")  # imports TensorFlow after MLIR's LLVM (see that module)

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from torch.export import Dim  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab.frontends import onnx as onnx_frontend  # noqa: E402
from mlc_lab.frontends import tensorflow as tf_frontend  # noqa: E402
from mlc_lab.frontends import torch as torch_frontend  # noqa: E402
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError  # noqa: E402

aten = torch.ops.aten


# == PyTorch: torch.export with Dim ================================================================
class Flatten(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x.reshape(x.shape[0], -1)) * 2.0  # the batch size is read: aten.sym_size once dynamic


def test_torch_export_with_a_dim_names_input_axis_and_fix() -> None:
    x = torch.randn(2, 3, 4)
    ep = torch.export.export(Flatten(), (x,), dynamic_shapes={"x": {0: Dim("batch", max=64)}})
    # the dynamic dimension is named, not the aten.sym_size.int it brings in
    with pytest.raises(
        FrontendError,
        match=r"input 'x' has a dynamic dimension \w+ at axis 0 .*range 0\.\.64.*"
        r"export without dynamic_shapes=",
    ) as info:
        mlc_lab.compile(ep, (x,), backend="interpreter")
    assert not isinstance(info.value, UnsupportedOpError)


def test_torch_static_export_and_module_compile_equal_pytorch() -> None:
    x = torch.randn(2, 3, 4)
    expected = Flatten()(x)
    for model in (torch.export.export(Flatten(), (x,)), Flatten()):
        torch.testing.assert_close(mlc_lab.compile(model, (x,), backend="interpreter")(x), expected)


# == ONNX: dim_param / unknown dims =================================================================
def _onnx_relu_matmul(batch: str | None) -> tuple[onnx.ModelProto, np.ndarray]:
    w = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Relu", ["h"], ["y"], name="act")],
        "dyn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])],
        [helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), w


@pytest.mark.parametrize("batch, shown", [("batch", "batch"), (None, r"\?")])
def test_onnx_symbolic_dimension_asks_for_input_shapes_and_input_shapes_fix_it(batch, shown) -> None:
    model, _ = _onnx_relu_matmul(batch)
    with pytest.raises(FrontendError, match=rf"input 'x' has a symbolic dimension {shown} at axis 0.*input_shapes="):
        mlc_lab.compile(model, backend="interpreter")
    x = np.random.default_rng(6).standard_normal((3, 4)).astype(np.float32)
    (expected,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    out = mlc_lab.compile(model, backend="interpreter", input_shapes={"x": (3, 4)})(x)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)


# == TensorFlow: None in a tf.function's signature ==================================================
def test_tf_signature_with_none_names_input_axis_and_fix() -> None:
    @tf.function(input_signature=[tf.TensorSpec([None, 8], tf.float32, name="x")])
    def f(x):
        return tf.nn.relu(x)

    with pytest.raises(
        FrontendError,
        match=r"input 'x' has a dynamic dimension at axis 0 \(shape \[None, 8\]\); "
        r"mlc_lab compiles static shapes: give the tf.function a static input_signature",
    ):
        mlc_lab.compile(f, (np.ones((2, 8), np.float32),), backend="interpreter")


def test_tf_signature_of_unknown_rank_is_refused() -> None:
    @tf.function(input_signature=[tf.TensorSpec(None, tf.float32, name="x")])
    def f(x):
        return x * 2.0

    with pytest.raises(FrontendError, match=r"input 'x' has an unknown rank; mlc_lab compiles static shapes"):
        mlc_lab.compile(f, (np.ones((2, 8), np.float32),), backend="interpreter")


def test_tf_static_signature_and_dynamic_keras_input_compile_for_the_example_shape() -> None:
    """The fixes the message names: a static signature, or a Keras model traced on the example input."""
    x = np.random.default_rng(7).standard_normal((2, 6, 5, 3)).astype(np.float32)
    f = tf.function(lambda t: tf.nn.relu(t) - 1.0, input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    np.testing.assert_allclose(mlc_lab.compile(f, (x,), backend="interpreter")(x), f(x).numpy(), atol=1e-6, rtol=0)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3, padding="same")])
    out = mlc_lab.compile(model, (x,), backend="interpreter")(tf.constant(x))
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), atol=1e-5, rtol=0)


# == unsupported ops: every one listed with where it is, before anything is converted ==============
@pytest.fixture
def no_conversion(monkeypatch):
    """Replace a table's converters with ones that fail the test if any is called."""

    def guard(table: dict) -> None:
        for key, entry in list(table.items()):
            if isinstance(entry, onnx_frontend.OnnxOp):
                guarded = dataclasses.replace(entry, convert=_must_not_run(key, entry.convert))
            else:
                guarded = _must_not_run(key, entry)
            monkeypatch.setitem(table, key, guarded)

    return guard


def _must_not_run(key, convert):
    def converter(*args, **kwargs):
        pytest.fail(f"{key} was converted although the model has unsupported ops")

    converter.__signature__ = getattr(convert, "__signature__", None)
    return converter


def test_torch_lists_every_unsupported_op_with_its_source_line(monkeypatch, no_conversion) -> None:
    monkeypatch.delitem(torch_frontend.ATEN_OPS, aten.cumsum.default, raising=False)
    monkeypatch.delitem(torch_frontend.ATEN_OPS, aten.flip.default, raising=False)
    no_conversion(torch_frontend.ATEN_OPS)

    class M(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x).cumsum(0)
            return torch.flip(y, (1,)) + torch.flip(x, (0,))

    with pytest.raises(UnsupportedOpError) as info:
        mlc_lab.compile(M(), (torch.randn(3, 4),), backend="interpreter")
    message = str(info.value)
    here = re.escape(__file__)
    assert re.search(
        rf"aten.cumsum.default: no converter \(1 node: %cumsum at {here}:\d+ in forward: "
        r"y = torch.relu\(x\).cumsum\(0\)\)",
        message,
    ), message
    assert re.search(
        rf"aten.flip.default: no converter \(2 nodes: %flip at {here}:\d+ in forward: .*"
        rf"%flip_1 at {here}:\d+",
        message,
    ), message


def test_onnx_lists_every_unsupported_op_with_its_node(monkeypatch, no_conversion) -> None:
    no_conversion(onnx_frontend.ONNX_OPS)
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="act"),
        helper.make_node("StringNormalizer", ["s"], ["t"], name="norm"),
        helper.make_node("SequenceEmpty", [], ["seq"], name="empty"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("s", TensorProto.STRING, [2]),
        ],
        [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedOpError) as info:  # named before the symbolic batch is asked about
        mlc_lab.compile(model, backend="interpreter")
    message = str(info.value)
    assert "StringNormalizer" in message and "'norm'" in message
    assert "SequenceEmpty" in message and "'empty'" in message


def test_tf_lists_every_unsupported_op_with_its_node(monkeypatch, no_conversion) -> None:
    monkeypatch.delitem(tf_frontend.TF_OPS, "Cumsum", raising=False)
    monkeypatch.delitem(tf_frontend.TF_OPS, "Cos", raising=False)
    no_conversion(tf_frontend.TF_OPS)

    @tf.function
    def f(x):
        y = tf.math.cumsum(tf.nn.relu(x), name="running_total")
        return tf.math.cos(y, name="wave") + tf.math.cos(x, name="wave2")

    with pytest.raises(UnsupportedOpError) as info:
        mlc_lab.compile(f, (np.zeros((3,), np.float32),), backend="interpreter")
    message = str(info.value)
    assert "TF Cumsum: no converter (1 node: 'running_total')" in message
    assert re.search(r"TF Cos: no converter \(2 nodes: ('wave', 'wave2'|'wave2', 'wave')\)", message), message
