"""ONNX's own conformance runner (`onnx.backend.test.BackendTest`) over the data shipped in the onnx wheel.

The way TVM and onnxruntime test their ONNX importers: `mlc_lab.interop.onnx_backend` is an
`onnx.backend.base.Backend`, and the runner feeds it every stored case and compares with the stored
outputs (rtol 1e-3, atol 1e-7):

- the 140 operator cases of `pytorch-converted/`, `pytorch-operator/`, `simple/`, on the interpreter,
  TVM and MLIR. Those we cannot support (sequences, strings, training `Gradient`, a shape computed at
  run time) must fail with `UnsupportedOpError` naming the op, the node and the opset;
- the nine light networks of `light/` (ResNet-50, DenseNet-121, Inception v1/v2, ShuffleNet,
  SqueezeNet, VGG-19, AlexNet, ZFNet), compiled once per backend; their outputs are compared with
  onnxruntime as well, on all three backends in every `make test`. The runner's ReferenceEvaluator
  reference is computed once per network for all three backends (`_ReferenceOnce`).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re

import numpy as np
import onnx
import onnx.reference
import pytest
from onnx import numpy_helper
from onnx.backend.test import BackendTest
from onnx.backend.test.loader import load_model_tests

from mlc_lab.frontends.errors import UnsupportedOpError
from mlc_lab.interop.onnx_backend import MlcLabRep, backend_for

BACKENDS = ("interpreter", "tvm", "mlir")
OPERATOR_KINDS = ("pytorch-converted", "pytorch-operator", "simple")

#: Stored operator cases that cannot be supported, and the op each must be refused for.
UNSUPPORTED = {
    **{f"test_sequence_model{i}": "Sequence|SplitToSequence" for i in range(1, 9)},
    **{
        f"test_strnorm_model_{case}": "StringNormalizer"
        for case in (
            "monday_casesensintive_lower",
            "monday_casesensintive_nochangecase",
            "monday_casesensintive_upper",
            "monday_empty_output",
            "monday_insensintive_upper_twodim",
            "nostopwords_nochangecase",
        )
    },
    "test_gradient_of_add": "Gradient",
    "test_gradient_of_add_and_mul": "Gradient",
    **{f"test_expand_shape_model{i}": "Expand" for i in range(1, 5)},  # the shape is a graph input
}

LIGHT = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)
#: What they cost (CPU seconds, TVM build + run / MLIR emit + IREE compile + run; ~0.1 s per distinct TVM
#: kernel and ~0.35 s per distinct IREE dispatch on an AVX-512 CPU), December 2026: alexnet 2.2 / 3.9,
#: zfnet512 2.4 / 4.0, shufflenet 2.4 / 6.9, vgg19 4.7 / 8.3, squeezenet 4.9 / 12.3, resnet50 6.8 / 13.1,
#: inception_v1 9.7 / 22.7, inception_v2 9.8 / 22.4, densenet121 20.0 / 20.5 (192 distinct kernels).


def _operator_cases() -> list[str]:
    return sorted(t.name for kind in OPERATOR_KINDS for t in load_model_tests(kind=kind))


#: (backend, serialized model) -> prepared model: the interpreter's light networks are converted once,
#: for the runner's test and the onnxruntime comparison (other backends keep nothing: memory).
_COMPILED: dict[tuple[str, int], MlcLabRep] = {}


def _backend(name: str) -> type:
    base = backend_for(name)
    if name != "interpreter":
        return base

    def prepare(cls, model, device="CPU", **kwargs):
        key = (name, hash(model.SerializeToString()))
        if key not in _COMPILED:
            _COMPILED[key] = base.prepare.__func__(cls, model, device, **kwargs)
        return _COMPILED[key]

    return type(base.__name__, (base,), {"prepare": classmethod(prepare)})


#: sha256 of (model, output names, inputs) -> the ReferenceEvaluator's outputs (see `_reference_once`).
_REFERENCES: dict[bytes, list[np.ndarray]] = {}


class _ReferenceOnce:
    """Stands in for `onnx.reference.ReferenceEvaluator` while this module runs. The runner computes a
    light network's reference with ONNX's (pure Python) evaluator in every backend's test; the outputs
    depend only on the model and its inputs, so they are computed once and handed to each backend."""

    evaluator = onnx.reference.ReferenceEvaluator

    def __init__(self, model: onnx.ModelProto, *args, **kwargs) -> None:
        self.model, self.args, self.kwargs = model, args, kwargs

    def run(self, output_names, feeds: dict[str, np.ndarray], *args, **kwargs) -> list[np.ndarray]:
        digest = hashlib.sha256(self.model.SerializeToString() + repr(output_names).encode())
        for name, value in sorted(feeds.items()):
            digest.update(f"{name}{value.dtype}{value.shape}".encode() + np.ascontiguousarray(value).tobytes())
        key = digest.digest()
        if key not in _REFERENCES:
            evaluator = self.evaluator(self.model, *self.args, **self.kwargs)
            _REFERENCES[key] = evaluator.run(output_names, feeds, *args, **kwargs)
        return [np.array(o, copy=True) for o in _REFERENCES[key]]


@pytest.fixture(autouse=True, scope="module")
def _reference_once():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx.reference, "ReferenceEvaluator", _ReferenceOnce)
        yield


@pytest.fixture(autouse=True, scope="module")
def _onnx_home(tmp_path_factory):
    """The runner writes the light networks' inputs under $ONNX_HOME: keep them out of the home folder."""
    old = os.environ.get("ONNX_HOME")
    os.environ["ONNX_HOME"] = str(tmp_path_factory.mktemp("onnx_home"))
    yield
    if old is None:
        os.environ.pop("ONNX_HOME", None)
    else:
        os.environ["ONNX_HOME"] = old


def _suite(backend: str, names: list[str]) -> dict:
    """The runner's test classes for `backend`, holding only the CPU tests of `names` (the runner marks
    every other test of its ~4,000 as skipped: they are dropped instead, so the report lists what ran)."""
    runner = BackendTest(_backend(backend), __name__)
    wanted = {f"{name}_cpu" for name in names}
    for name in names:
        runner.include(f"^{re.escape(name)}_cpu$")
    cases = {}
    for category, case in runner.test_cases.items():
        for attr in [a for a in vars(case) if a.startswith("test_") and a not in wanted]:
            delattr(case, attr)
        if any(a.startswith("test_") for a in vars(case)):
            case.__name__ = case.__qualname__ = f"{category}_{backend}"
            case.backend = backend
            cases[case.__name__] = case
    return cases


_SUPPORTED = [n for n in _operator_cases() if n not in UNSUPPORTED]
for _backend_name in BACKENDS:
    globals().update(_suite(_backend_name, _SUPPORTED + [f"test_{n}" for n in LIGHT]))


def test_the_stored_operator_cases_are_the_140_the_issue_counts() -> None:
    """140 cases with stored data; at least 120 are run (above) and must pass on every backend."""
    cases = _operator_cases()
    assert len(cases) == 140
    assert set(UNSUPPORTED) <= set(cases)
    assert len(_SUPPORTED) >= 120


def _load(case: str) -> tuple[onnx.ModelProto, list[np.ndarray]]:
    (test,) = [t for kind in OPERATOR_KINDS for t in load_model_tests(kind=kind) if t.name == case]
    model = onnx.load(os.path.join(test.model_dir, "model.onnx"))
    inputs = sorted(glob.glob(os.path.join(test.model_dir, "test_data_set_0", "input_*.pb")))
    return model, [numpy_helper.to_array(onnx.load_tensor(f)) for f in inputs]


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_cases_name_the_op_node_and_opset(case: str) -> None:
    model, _ = _load(case)
    with pytest.raises(UnsupportedOpError) as info:
        backend_for("interpreter").prepare(model)
    message = str(info.value)
    assert re.search(UNSUPPORTED[case], message), message
    assert re.search(r"opset \d+", message), message
    assert re.search(r"'[^']*' -> '[^']+'|node '[^']*'", message), message  # the node (name and output)


@pytest.mark.parametrize("case", ["test_operator_non_float_params", "test_operator_clip", "test_Embedding"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_no_silent_dtype_changes(case: str, backend: str) -> None:
    """Outputs keep the model's declared element types (int64 stays int64 on TVM)."""
    model, inputs = _load(case)
    outputs = backend_for(backend).prepare(model).run(inputs)
    declared = [onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type) for v in model.graph.output]
    assert [o.dtype for o in outputs] == declared


def _light_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The runner's dummy input for a light network (arange / n, as `Runner.generate_dummy_data`)."""
    inits = {i.name for i in model.graph.initializer}
    (value,) = [v for v in model.graph.input if v.name not in inits]
    shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
    n = int(np.prod(shape))
    return {value.name: (np.arange(n).reshape(shape) / n).astype(np.float32)}


@pytest.mark.parametrize("network", LIGHT)
def test_light_networks_equal_onnxruntime(network: str) -> None:
    """The interpreter (the oracle the other backends are checked against above) equals onnxruntime too."""
    ort = pytest.importorskip("onnxruntime")
    path = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light", f"light_{network}.onnx")
    model = onnx.load(path)
    feeds = _light_input(model)
    (want,) = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    (got,) = _backend("interpreter").prepare(model).run(list(feeds.values()))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)


# == ops the stored cases do not reach, each against onnxruntime ===================================
def _f32(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _i64(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


#: (case id, op, inputs (name -> array; a name starting with "c_" becomes an initializer), attributes, opset)
OP_CASES = [
    (
        "resize_nearest_sizes",
        "Resize",
        {"x": _f32(1, 2, 3, 4), "roi": None, "scales": None, "c_sizes": _i64(1, 2, 7, 5)},
        {},
        19,
    ),
    (
        "resize_nearest_asymmetric_floor",
        "Resize",
        {"x": _f32(1, 2, 3, 4), "roi": None, "c_scales": np.array([1, 1, 2, 1.5], np.float32)},
        {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"},
        13,
    ),
    (
        "resize_linear_half_pixel",
        "Resize",
        {"x": _f32(1, 2, 3, 4), "roi": None, "c_scales": np.array([1, 1, 2, 2.5], np.float32)},
        {"mode": "linear"},
        13,
    ),
    (
        "resize_linear_align_corners",
        "Resize",
        {"x": _f32(2, 5, 4), "roi": None, "scales": None, "c_sizes": _i64(2, 3, 7)},
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        13,
    ),
    (
        "resize_linear_pytorch_axes",
        "Resize",
        {"x": _f32(1, 3, 4, 4), "roi": None, "scales": None, "c_sizes": _i64(8, 2)},
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel", "axes": [2, 3]},
        18,
    ),
    ("resize_opset10", "Resize", {"x": _f32(1, 1, 2, 3), "c_scales": np.array([1, 1, 2, 3], np.float32)}, {}, 10),
    ("upsample_nearest", "Upsample", {"x": _f32(1, 2, 2, 3), "c_scales": np.array([1, 1, 2, 2], np.float32)}, {}, 9),
    ("einsum_matmul", "Einsum", {"a": _f32(3, 4), "b": _f32(4, 5, seed=1)}, {"equation": "ij,jk->ik"}, 12),
    ("einsum_batched", "Einsum", {"a": _f32(2, 3, 4), "b": _f32(2, 4, 5, seed=1)}, {"equation": "bij,bjk->bik"}, 12),
    (
        "einsum_attention",
        "Einsum",
        {"q": _f32(2, 3, 4, 8), "k": _f32(2, 3, 5, 8, seed=1)},
        {"equation": "bhqd,bhkd->bhqk"},
        12,
    ),
    ("einsum_ellipsis", "Einsum", {"a": _f32(2, 3, 4), "b": _f32(4, 6, seed=1)}, {"equation": "...ij,jk->...ik"}, 12),
    ("einsum_transpose_sum", "Einsum", {"a": _f32(3, 4, 5)}, {"equation": "ijk->ki"}, 12),
    ("einsum_outer_implicit", "Einsum", {"a": _f32(3), "b": _f32(4, seed=1)}, {"equation": "i,j"}, 12),
    (
        "pad_reflect_axes",
        "Pad",
        {"x": _f32(2, 4, 5), "c_pads": _i64(1, 2, 2, 3), "value": None, "c_axes": _i64(1, 2)},
        {"mode": "reflect"},
        18,
    ),
    ("pad_edge", "Pad", {"x": _f32(2, 3), "c_pads": _i64(1, 2, 3, 0)}, {"mode": "edge"}, 13),
    (
        "pad_constant_negative",
        "Pad",
        {"x": _f32(3, 4), "c_pads": _i64(1, -1, 0, 2), "c_value": np.array(1.5, np.float32)},
        {},
        13,
    ),
    ("split_input_sizes", "Split", {"x": _f32(2, 6), "c_split": _i64(1, 2, 3)}, {"axis": 1}, 13),
    ("split_num_outputs_uneven", "Split", {"x": _f32(7, 2)}, {"axis": 0, "num_outputs": 3}, 18),
    (
        "slice_steps_negative_starts",
        "Slice",
        {"x": _f32(5, 6), "c_s": _i64(-4, 1), "c_e": _i64(9999, -1), "c_a": _i64(0, 1), "c_st": _i64(2, 3)},
        {},
        13,
    ),
    ("tile", "Tile", {"x": _f32(2, 3), "c_r": _i64(2, 3)}, {}, 13),
    ("expand_constant_shape", "Expand", {"x": _f32(3, 1), "c_shape": _i64(2, 1, 4)}, {}, 13),
    (
        "gather_constant_indices_axis1",
        "Gather",
        {"x": _f32(3, 5), "c_i": np.array([[4, -1], [0, 2]], np.int64)},
        {"axis": 1},
        13,
    ),
    ("gather_embedding", "Gather", {"w": _f32(6, 3), "i": np.array([[5, 0, -1]], np.int64)}, {}, 13),
    ("shape_start_end", "Shape", {"x": _f32(2, 3, 4, 5)}, {"start": 1, "end": -1}, 19),
    (
        "constant_of_shape_int",
        "ConstantOfShape",
        {"c_s": _i64(2, 3)},
        {"value": onnx.numpy_helper.from_array(np.array([7], np.int64))},
        20,
    ),
    (
        "cast_float_to_int_truncates",
        "Cast",
        {"x": np.array([-2.7, -0.5, 0.5, 2.7], np.float32)},
        {"to": onnx.TensorProto.INT32},
        19,
    ),
    (
        "range_float",
        "Range",
        {"c_a": np.array(1.0, np.float32), "c_b": np.array(4.0, np.float32), "c_c": np.array(0.75, np.float32)},
        {},
        11,
    ),
    (
        "sign_zero_tiny_nan",
        "Sign",
        {"x": np.array([-3.0, -1e-45, 0.0, 1e-40, 2.0, np.nan, np.inf], np.float32)},
        {},
        13,
    ),
    ("hard_sigmoid", "HardSigmoid", {"x": _f32(3, 4) * 4}, {"alpha": 0.3, "beta": 0.4}, 22),
    ("leaky_relu", "LeakyRelu", {"x": _f32(3, 4)}, {"alpha": 0.2}, 16),
    ("prelu_broadcast", "PRelu", {"x": _f32(2, 3, 4), "c_s": _f32(3, 1, seed=1)}, {}, 16),
    ("elu", "Elu", {"x": _f32(3, 4)}, {"alpha": 0.7}, 22),
    ("mean_three_broadcast", "Mean", {"a": _f32(2, 3), "b": _f32(3, seed=1), "c": _f32(2, 1, seed=2)}, {}, 13),
    (
        "instance_norm",
        "InstanceNormalization",
        {"x": _f32(2, 3, 4, 5), "c_s": _f32(3, seed=1), "c_b": _f32(3, seed=2)},
        {"epsilon": 1e-3},
        22,
    ),
    ("lrn", "LRN", {"x": _f32(1, 6, 3, 3)}, {"size": 3, "alpha": 0.01, "beta": 0.6, "bias": 2.0}, 13),
    (
        "conv_transpose_stride_pads_output_padding",
        "ConvTranspose",
        {"x": _f32(1, 4, 3, 4), "c_w": _f32(4, 3, 3, 2, seed=1), "c_b": _f32(6, seed=2)},
        {"strides": [2, 3], "pads": [1, 0, 0, 1], "output_padding": [1, 2], "group": 2},
        22,
    ),
    (
        "conv_transpose_dilated",
        "ConvTranspose",
        {"x": _f32(1, 2, 4, 4), "c_w": _f32(2, 3, 2, 2, seed=1)},
        {"dilations": [2, 1], "pads": [2, 1, 2, 1]},
        22,
    ),
    ("conv_transpose_1d", "ConvTranspose", {"x": _f32(2, 3, 5), "c_w": _f32(3, 2, 3, seed=1)}, {"strides": [2]}, 22),
    (
        "conv3d_groups_pads_strides",
        "Conv",
        {"x": _f32(1, 4, 5, 6, 5), "c_w": _f32(6, 2, 3, 2, 3, seed=1), "c_b": _f32(6, seed=2)},
        {"group": 2, "pads": [1, 0, 1, 1, 1, 0], "strides": [2, 1, 2], "dilations": [1, 2, 1]},
        22,
    ),
    (
        "max_pool3d_padded",
        "MaxPool",
        {"x": _f32(1, 2, 5, 4, 4)},
        {"kernel_shape": [3, 2, 2], "pads": [1, 0, 0, 1, 1, 1], "strides": [2, 2, 1]},
        22,
    ),
    (
        "avg_pool1d_count_pad",
        "AveragePool",
        {"x": _f32(1, 2, 7)},
        {"kernel_shape": [3], "pads": [1, 1], "count_include_pad": 1},
        22,
    ),
    ("where_broadcast", "Where", {"c": np.array([[True], [False]]), "a": _f32(2, 3), "b": _f32(3, seed=1)}, {}, 16),
    ("less_int64", "Less", {"a": _i64(1, 5, -3), "b": _i64(2, 5, -4)}, {}, 13),
    ("greater_float_broadcast", "Greater", {"a": _f32(2, 3), "b": _f32(3, seed=1)}, {}, 13),
    ("less_or_equal", "LessOrEqual", {"a": _f32(4), "c_b": np.array([0.0], np.float32)}, {}, 16),
    (
        "greater_or_equal_int32",
        "GreaterOrEqual",
        {"a": np.arange(-2, 3, dtype=np.int32), "c_b": np.array(0, np.int32)},
        {},
        16,
    ),
    (
        "equal_int32_broadcast",
        "Equal",
        {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "c_b": np.array([1, 4, 5], np.int32)},
        {},
        19,
    ),
    (
        "and_or_xor_not",
        "Xor",
        {"a": np.array([True, True, False, False]), "b": np.array([True, False, True, False])},
        {},
        7,
    ),
    ("and", "And", {"a": np.array([[True, False]]), "b": np.array([[True], [False]])}, {}, 7),
    ("not", "Not", {"a": np.array([True, False])}, {}, 1),
    (
        "gather_axis1_runtime_indices",
        "Gather",
        {"x": _f32(3, 5), "i": np.array([[4, -1], [0, 2]], np.int64)},
        {"axis": 1},
        13,
    ),
    ("depth_to_space_crd", "DepthToSpace", {"x": _f32(1, 8, 2, 3)}, {"blocksize": 2, "mode": "CRD"}, 13),
]


def _op_model(op: str, inputs: dict, attrs: dict, opset: int) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """One node; inputs named c_* are initializers, None values are omitted optional inputs."""
    graph_inputs, inits, feeds, names = [], [], {}, []
    for name, value in inputs.items():
        if value is None:
            names.append("")
            continue
        names.append(name)
        if name.startswith("c_"):
            inits.append(numpy_helper.from_array(value, name))
        else:
            feeds[name] = value
            elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
            graph_inputs.append(onnx.helper.make_tensor_value_info(name, elem, value.shape))
    while names and not names[-1]:
        names.pop()
    n_out = 3 if op == "Split" else 1
    outputs = [f"y{i}" for i in range(n_out)]
    node = onnx.helper.make_node(op, names, outputs, **attrs)
    graph = onnx.helper.make_graph(
        [node], op.lower(), graph_inputs, [onnx.helper.make_empty_tensor_value_info(o) for o in outputs], inits
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model, feeds


@pytest.mark.parametrize(("op", "inputs", "attrs", "opset"), [c[1:] for c in OP_CASES], ids=[c[0] for c in OP_CASES])
def test_op_equals_onnxruntime(op: str, inputs: dict, attrs: dict, opset: int) -> None:
    ort = pytest.importorskip("onnxruntime")
    model, feeds = _op_model(op, inputs, attrs, opset)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    for value, array in zip(model.graph.output, want):  # declare the outputs' types (the checker wants them)
        elem = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
        value.CopyFrom(onnx.helper.make_tensor_value_info(value.name, elem, array.shape))
    got = backend_for("interpreter").prepare(model).run(list(feeds.values()))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def _chain_model() -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """Resize (linear) -> Einsum -> Less/Where -> Gather at run-time indices -> Pad (reflect) -> Tile -> Split."""
    h = onnx.helper
    nodes = [
        h.make_node("Resize", ["x", "", "scales"], ["r"], mode="linear"),
        h.make_node("Einsum", ["r", "w"], ["e"], equation="bchw,wk->bchk"),
        h.make_node("Less", ["e", "zero"], ["neg"]),
        h.make_node("Where", ["neg", "zero", "e"], ["pos"]),
        h.make_node("Gather", ["pos", "idx"], ["g"], axis=2),
        h.make_node("Pad", ["g", "pads"], ["p"], mode="reflect"),
        h.make_node("Tile", ["p", "reps"], ["t"]),
        h.make_node("Split", ["t"], ["s0", "s1"], axis=1, num_outputs=2),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(_f32(6, 5, seed=1), "w"),
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 1, 2], np.int64), "pads"),
        numpy_helper.from_array(np.array([1, 2, 1, 1], np.int64), "reps"),
    ]
    feeds = {"x": _f32(1, 2, 4, 3), "idx": np.array([7, 0, -1], np.int64)}
    inputs = [
        h.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 3]),
        h.make_tensor_value_info("idx", onnx.TensorProto.INT64, [3]),
    ]
    outputs = [h.make_tensor_value_info(o, onnx.TensorProto.FLOAT, [1, 2, 5, 9]) for o in ("s0", "s1")]
    model = h.make_model(h.make_graph(nodes, "chain", inputs, outputs, inits), opset_imports=[h.make_opsetid("", 18)])
    model.ir_version = 9
    return model, feeds


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_converters_chained_equal_onnxruntime_on_every_backend(backend: str) -> None:
    """The converters the stored cases do not reach, in one model compiled once per backend."""
    ort = pytest.importorskip("onnxruntime")
    model, feeds = _chain_model()
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    got = backend_for(backend).prepare(model).run(list(feeds.values()))
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
