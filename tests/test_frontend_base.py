"""The shared frontend base: every missing op listed before anything is converted, `same(...)` table
entries for 1:1 ops, one error hierarchy under MlcLabError, and ONNX/TensorFlow import without PyTorch."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")

import onnx  # noqa: E402
from onnx import helper  # noqa: E402

import mlc_lab  # noqa: E402
from mlc_lab.errors import MlcLabError  # noqa: E402
from mlc_lab.frontends import base, errors  # noqa: E402
from mlc_lab.frontends import onnx as onnx_frontend  # noqa: E402
from mlc_lab.frontends import torch as torch_frontend  # noqa: E402
from mlc_lab.frontends.base import Same, same  # noqa: E402
from mlc_lab.frontends.errors import FrontendError, UnsupportedOpError  # noqa: E402
from mlc_lab.ir import GraphBuilder, interpret  # noqa: E402
from mlc_lab.ir.ops import OpError  # noqa: E402

aten = torch.ops.aten
F32 = onnx.TensorProto.FLOAT


def _onnx_model(nodes, shape=(2, 3), opset=13) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "case",
        [helper.make_tensor_value_info("x", F32, list(shape))],
        [helper.make_tensor_value_info(nodes[-1].output[0], F32, None)],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _spy(calls: list):
    def convert(cx, x):
        calls.append(x)
        return cx.op("relu", x)

    return convert


# == every missing op is listed, before any conversion ==============================================
# The ops made "missing" are taken out of the tables here, so the tests keep working as the tables grow.
def test_onnx_lists_every_missing_op_with_counts_before_converting(monkeypatch) -> None:
    calls: list = []
    monkeypatch.setitem(onnx_frontend.ONNX_OPS, "Relu", onnx_frontend.OnnxOp(_spy(calls), 14))
    monkeypatch.delitem(onnx_frontend.ONNX_OPS, "Tanh")
    monkeypatch.delitem(onnx_frontend.ONNX_OPS, "Sigmoid")
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="first_relu"),  # convertible, and first in the graph
        helper.make_node("Tanh", ["r"], ["t0"], name="tanh0"),
        helper.make_node("Sigmoid", ["t0"], ["s"], name="sig"),
        helper.make_node("Tanh", ["s"], ["t1"], name="tanh1"),
        helper.make_node("Hardmax", ["t1"], ["h"], name="hm"),  # an op ONNX has and the IR does not
    ]
    with pytest.raises(UnsupportedOpError) as info:
        onnx_frontend.from_onnx(_onnx_model(nodes))
    first, *lines = str(info.value).splitlines()
    assert first.endswith("cannot convert: ONNX Tanh, ONNX Sigmoid, ONNX Hardmax")
    assert "  ONNX Tanh: no converter (2 nodes: 'tanh0' -> 't0', 'tanh1' -> 't1')" in lines
    assert "  ONNX Sigmoid: no converter (1 node: 'sig' -> 's')" in lines
    assert "  ONNX Hardmax: no converter (1 node: 'hm' -> 'h')" in lines
    assert calls == []  # not even the supported op before them was converted


class _ThreeMissing(torch.nn.Module):
    def forward(self, x):
        y = torch.tanh(torch.relu(torch.sigmoid(x)))
        return torch.exp(y) + torch.tanh(x)


def test_torch_lists_every_missing_op_with_counts_before_converting(monkeypatch) -> None:
    calls: list = []
    monkeypatch.setitem(torch_frontend.ATEN_OPS, aten.relu.default, _spy(calls))
    for op in (aten.sigmoid.default, aten.tanh.default, aten.exp.default):
        monkeypatch.delitem(torch_frontend.ATEN_OPS, op)
    with pytest.raises(UnsupportedOpError) as info:
        torch_frontend.from_torch(_ThreeMissing(), torch.randn(3, 4))
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith("PyTorch model '_ThreeMissing' uses ops mlc_lab.frontends.torch cannot convert: ")
    assert first.endswith("aten.sigmoid.default, aten.tanh.default, aten.exp.default")
    assert "aten.tanh.default: no converter (2 nodes: %tanh at " in message
    assert "in forward: return torch.exp(y) + torch.tanh(x)" in message  # the second tanh's line
    assert "aten.exp.default: no converter (1 node: %exp at " in message
    assert "aten.sigmoid.default: no converter (1 node: %sigmoid at " in message
    assert calls == []


def test_check_supported_shows_three_sites_per_op_and_counts_the_rest() -> None:
    nodes = [("Foo", f"n{i}") for i in range(5)] + [("Ok", "k"), ("Bar", "b")]
    with pytest.raises(UnsupportedOpError) as info:
        base.check_supported(
            nodes,
            lambda n: None if n[0] == "Ok" else (n[0], "no converter"),
            lambda n: n[1],
            subject="model 'm'",
            frontend="toy",
            framework="toy",
            table="TOY_OPS",
            supported=["Ok"],
            advice="leave them out",
        )
    assert str(info.value).splitlines() == [
        "model 'm' uses ops mlc_lab.frontends.toy cannot convert: Foo, Bar",
        "  Foo: no converter (5 nodes: n0, n1, n2, and 2 more)",
        "  Bar: no converter (1 node: b)",
        "Supported toy ops:",
        "  Ok",
        "Add a converter to TOY_OPS, or leave them out.",
    ]


# == 1:1 ops are table entries =======================================================================
def test_one_to_one_ops_are_same_entries_in_every_table() -> None:
    assert repr(torch_frontend.ATEN_OPS[aten.relu.default]) == "same('relu')"
    assert repr(torch_frontend.ATEN_OPS[aten.gelu.default]) == "same('gelu', 'approximate')"
    for op_type, ir in [("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("Exp", "exp"), ("Erf", "erf"), ("Abs", "abs")]:
        entry = onnx_frontend.ONNX_OPS[op_type].convert
        assert isinstance(entry, Same) and entry.op == ir


def test_a_new_torch_op_is_one_table_line(monkeypatch) -> None:
    """aten.clip has no converter; one `same` line with its two attributes makes the model import and run."""
    monkeypatch.setitem(torch_frontend.ATEN_OPS, aten.clip.default, same("clip", "min", "max"))

    class Clip(torch.nn.Module):
        def forward(self, x):
            return torch.clip(x, -0.5, 0.25) * 2

    x = torch.randn(3, 5)
    graph = torch_frontend.from_torch(Clip(), x)
    assert [n.op for n in graph.nodes if n.op not in ("input", "constant")] == ["clip", "mul"]
    np.testing.assert_allclose(interpret(graph, x.numpy())[0], Clip()(x).numpy(), rtol=0, atol=1e-7)


def test_onnx_same_entry_runs_like_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    nodes = [
        helper.make_node("Gelu", ["x"], ["g"], name="g", approximate="tanh"),
        helper.make_node("Tanh", ["g"], ["t"], name="t"),
        helper.make_node("Abs", ["t"], ["y"], name="a"),
    ]
    model = _onnx_model(nodes, shape=(4, 6), opset=20)
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    graph = onnx_frontend.from_onnx(model)
    assert [n.attrs for n in graph.nodes if n.op == "gelu"] == [{"approximate": "tanh"}]
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(interpret(graph, x)[0], want, rtol=0, atol=1e-6)


def test_same_refuses_an_argument_it_cannot_express(monkeypatch) -> None:
    """Mapping leaky_relu to relu would drop negative_slope: the entry refuses, naming it and the node."""
    monkeypatch.setitem(torch_frontend.ATEN_OPS, aten.leaky_relu.default, same("relu"))
    leaky = torch.nn.LeakyReLU(0.2)
    with pytest.raises(FrontendError, match=r"aten\.leaky_relu\.default \(fx node %leaky_relu.*negative_slope=0\.2"):
        torch_frontend.from_torch(leaky, torch.randn(3))


def test_same_names_an_unknown_ir_op_at_the_table_line() -> None:
    with pytest.raises(FrontendError, match=r"same\('mishh'\): the IR has no op 'mishh'"):
        same("mishh")


def test_same_declares_its_attributes_so_onnx_refuses_others() -> None:
    entry = same("softmax", axis="dim")
    keyword_only = [p.name for p in inspect.signature(entry).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert keyword_only == ["dim"] and entry.attrs == {"dim": "axis"} and repr(entry) == "same('softmax', axis='dim')"
    with pytest.raises(FrontendError, match=r"attribute \['approximate'\] is not supported by the converter"):
        onnx_frontend._check_arguments(same("tanh"), None, [None], {"approximate": "tanh"}, "label")


def test_context_names_nodes_after_the_source_node() -> None:
    cx = base.ConverterContext(GraphBuilder("g"))
    cx.label = "block1"
    x = cx.b.input("x", (2,), "float32")
    y = cx.op("add", x, cx.const(1.0, "float32", "one"))
    assert (y.name, y.inputs[1].name) == ("block1.add", "block1.one")
    assert cx.cast(x, "float32") is x and cx.tensor(2, "float32").dtype == "float32"
    with pytest.raises(FrontendError, match="Reshape's shape must be a constant"):
        cx.ints(x, "Reshape's shape")
    assert base.clean_name("/enc/layer.0/MatMul:0") == "enc.layer.0.MatMul_0"


# == one error hierarchy ==============================================================================
def test_frontend_errors_are_one_class_under_mlc_lab_error() -> None:
    assert torch_frontend.FrontendError is onnx_frontend.FrontendError is base.FrontendError is errors.FrontendError
    assert torch_frontend.UnsupportedOpError is errors.UnsupportedOpError
    for cls in (FrontendError, UnsupportedOpError, OpError):
        assert issubclass(cls, MlcLabError) and issubclass(cls, ValueError)


def test_real_failures_are_caught_as_mlc_lab_error(tmp_path) -> None:
    with pytest.raises(MlcLabError, match="is empty"):
        (tmp_path / "empty.onnx").write_bytes(b"")
        onnx_frontend.from_onnx(tmp_path / "empty.onnx")
    with pytest.raises(MlcLabError, match="relu"):  # OpError from the IR's type rule
        GraphBuilder("g").op("relu", GraphBuilder("h").input("x", (2,), "int32"))
    with pytest.raises(ValueError):  # and the built-in base still catches them
        GraphBuilder("g").op("relu", GraphBuilder("h").input("x", (2,), "int32"))


def test_public_error_classes_of_the_package_derive_from_mlc_lab_error() -> None:
    from mlc_lab.backends.custom.base import ConfigError, MappingError
    from mlc_lab.ir.interpreter import InterpreterError
    from mlc_lab.ir.layout import LayoutError
    from mlc_lab.ir.memory import MemoryLimitError
    from mlc_lab.ir.verifier import VerificationError
    from mlc_lab.tuning.cache import TuningCacheError
    from mlc_lab.tuning.database import InvalidRecord

    builtin = {
        ConfigError: ValueError,
        MappingError: ValueError,
        InterpreterError: RuntimeError,
        LayoutError: ValueError,
        MemoryLimitError: MemoryError,
        VerificationError: ValueError,
        TuningCacheError: OSError,
        InvalidRecord: ValueError,
    }
    for cls, old_base in builtin.items():
        assert issubclass(cls, MlcLabError) and issubclass(cls, old_base), cls
    assert mlc_lab.MlcLabError is MlcLabError


# == ONNX (and TensorFlow) import without PyTorch =====================================================
_BLOCK_TORCH = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked for this test")

sys.meta_path.insert(0, _NoTorch())
"""


def _run_without_torch(body: str, timeout: int = 120) -> str:
    code = _BLOCK_TORCH + textwrap.dedent(body)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_onnx_frontend_imports_and_converts_without_torch() -> None:
    out = _run_without_torch(
        """
        import numpy as np
        import onnx
        from onnx import helper, numpy_helper

        import mlc_lab
        from mlc_lab.frontends.onnx import from_onnx

        try:
            import torch  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker let torch in")

        rng = np.random.default_rng(1)
        w = rng.standard_normal((5, 3)).astype(np.float32)
        b = rng.standard_normal(5).astype(np.float32)
        nodes = [
            helper.make_node("Gemm", ["x", "w", "b"], ["h"], name="fc", transB=1),
            helper.make_node("Relu", ["h"], ["r"], name="act"),
            helper.make_node("Softmax", ["r"], ["y"], name="prob", axis=-1),
        ]
        graph = helper.make_graph(
            nodes, "mlp",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, 3])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, 5])],
            [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        x = rng.standard_normal((2, 3)).astype(np.float32)
        got = mlc_lab.interpret(from_onnx(model), x)[0]
        h = np.maximum(x @ w.T + b, 0)
        want = np.exp(h - h.max(-1, keepdims=True))
        want /= want.sum(-1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        np.testing.assert_allclose(mlc_lab.compile(model, (x,), backend="interpreter")(x), want, rtol=0, atol=1e-6)
        print("torch loaded:", "torch" in sys.modules)
        """
    )
    assert out.strip().splitlines()[-1] == "torch loaded: False"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_tensorflow_frontend_imports_and_converts_without_torch() -> None:
    out = _run_without_torch(
        """
        import numpy as np

        import mlc_lab
        from mlc_lab.frontends.errors import UnsupportedOpError
        from mlc_lab.frontends.tensorflow import from_tensorflow
        import tensorflow as tf

        @tf.function
        def f(x):
            return tf.nn.relu(x) * 2.0 - tf.tanh(x)

        x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
        np.testing.assert_allclose(mlc_lab.interpret(from_tensorflow(f, (x,)), x)[0], f(x).numpy(), rtol=0, atol=1e-6)

        @tf.function
        def g(x):
            return tf.tanh(tf.tanh(x, name="t0"), name="t1") + tf.sigmoid(x, name="s0")

        from mlc_lab.frontends.tensorflow import TF_OPS
        del TF_OPS["Tanh"], TF_OPS["Sigmoid"]  # taken out, so that the test keeps working as the table grows
        try:
            from_tensorflow(g, (x,))
        except UnsupportedOpError as e:
            print(str(e).splitlines()[0])
        print("torch loaded:", "torch" in sys.modules)
        """,
        timeout=240,
    )
    *_, first, last = out.strip().splitlines()
    assert first.endswith("mlc_lab.frontends.tensorflow cannot convert: TF Tanh, TF Sigmoid"), first
    assert last == "torch loaded: False"
