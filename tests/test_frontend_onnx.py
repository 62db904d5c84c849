"""ONNX frontend: zoo models exported by torch.onnx equal onnxruntime's outputs; errors name the op."""

from __future__ import annotations

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import mlc_lab  # noqa: E402
from mlc_lab import zoo  # noqa: E402
from mlc_lab.frontends.onnx import from_onnx  # noqa: E402
from mlc_lab.frontends.torch import FrontendError, UnsupportedOpError  # noqa: E402


def _export(m: zoo.ZooModel) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(m.module, m.example_inputs, buf, dynamo=False, input_names=["x"], opset_version=17)
    return buf.getvalue()


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("name", zoo.names())
def test_equals_onnxruntime(name: str, tmp_path) -> None:
    m = zoo.load(name)
    data = _export(m)
    x = m.numpy_inputs()[0]
    reference = ort.InferenceSession(data).run(None, {"x": x})[0]
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(data)
    for backend in ("interpreter", "tvm"):
        out = mlc_lab.compile(path, backend=backend)(x)
        np.testing.assert_allclose(out, reference, atol=1e-4, rtol=0)


def _tiny(op_type: str, dims=(1, 4)) -> onnx.ModelProto:
    h = onnx.helper
    node = h.make_node(op_type, ["x"], ["y"], name="my_node")
    graph = h.make_graph(
        [node],
        "tiny",
        [h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, list(dims))],
        [h.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
    )
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def test_unsupported_op_names_op_and_node() -> None:
    with pytest.raises(UnsupportedOpError, match="ONNX CumSum.*'my_node'"):
        from_onnx(_tiny("CumSum"))


def test_symbolic_dimension_asks_for_input_shapes() -> None:
    model = _tiny("Relu", dims=("batch", 4))
    with pytest.raises(FrontendError, match="symbolic dimension batch.*input_shapes"):
        from_onnx(model)
    graph = from_onnx(model, input_shapes={"x": (2, 4)})
    x = np.array([[-1, 2, -3, 4], [5, -6, 7, -8]], dtype=np.float32)
    np.testing.assert_array_equal(mlc_lab.interpret(graph, x)[0], np.maximum(x, 0))
