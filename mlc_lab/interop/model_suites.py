"""The real models people bring, built the same way everywhere: the coverage report, benchmarks, the book.

Four suites, each a dict name -> builder returning a `SuiteModel` (the model, its inputs, the reference
outputs computed by the model's own framework):

- `hf`: Hugging Face `transformers` architectures from tiny configs (random weights, nothing downloaded);
- `onnx-light`: the nine classic networks shipped in the `onnx` wheel (reference: onnxruntime);
- `onnx-ops`: the 140 operator cases with stored inputs/outputs in the wheel (reference: the stored outputs);
- `keras`: `keras.applications` MobileNetV2/ResNet50, `weights=None`, 32x32 (reference: TensorFlow).

The HF configs are those of tests/test_hf_models.py. Frameworks are imported inside the builders, so
listing names (`suite_names`) costs nothing.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

SEQ, VOCAB, IMAGE = 8, 100, 32
#: the suites, in the order `mlc-lab coverage` reports them
SUITES = ("hf", "onnx-light", "onnx-ops", "keras")
LIGHT = (
    "bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
    "vgg19", "zfnet512",
)  # fmt: skip
OPERATOR_KINDS = ("pytorch-converted", "pytorch-operator", "simple")


@dataclass
class SuiteModel:
    """One model of a suite: what to compile, what to feed it and what its own framework answered."""

    name: str
    framework: str  #: "torch", "onnx" or "tensorflow"
    model: Any  #: a torch.nn.Module, an onnx.ModelProto or a keras.Model
    inputs: tuple[np.ndarray, ...]  #: NumPy inputs, in the model's input order
    reference: list[np.ndarray]  #: the framework's outputs, flattened
    example_inputs: tuple = ()  #: the framework-typed inputs (torch tensors) where the importer needs them


# == Hugging Face transformers, tiny configs ======================================================
def hf_module(model: Any, names: tuple[str, ...]) -> Any:
    """`model` in eval mode, called with its inputs as keywords `names` (the order `torch.export` sees)."""
    import torch

    class Keywords(torch.nn.Module):
        """Calls the model with keyword arguments (HF's positional order puts the KV cache second)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: torch.Tensor):
            return self.model(**dict(zip(names, args)))

    return Keywords().eval()


def hf_configs() -> dict[str, tuple[Callable[[], Any], str]]:
    """name -> (model builder, input kind: "ids" or "image")."""
    import transformers as hf

    return {
        "gpt2": (lambda: hf.GPT2LMHeadModel(hf.GPT2Config(
            vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=2, n_head=2, use_cache=False,
            bos_token_id=0, eos_token_id=0)), "ids"),
        "llama": (lambda: hf.LlamaForCausalLM(hf.LlamaConfig(
            vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=16, use_cache=False)), "ids"),
        "bert": (lambda: hf.BertModel(hf.BertConfig(
            vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=16)), "ids"),
        "vit": (lambda: hf.ViTModel(hf.ViTConfig(
            image_size=IMAGE, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64)), "image"),
        "resnet": (lambda: hf.ResNetModel(hf.ResNetConfig(
            embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic")), "image"),
        "mobilenet_v2": (lambda: hf.MobileNetV2Model(hf.MobileNetV2Config(
            image_size=IMAGE, depth_multiplier=0.35)), "image"),
        "convnext": (lambda: hf.ConvNextModel(hf.ConvNextConfig(
            hidden_sizes=[16, 32], depths=[1, 1], num_stages=2)), "image"),
    }  # fmt: skip


HF_ARCHITECTURES = ("gpt2", "llama", "bert", "vit", "resnet", "mobilenet_v2", "convnext")


def hf_model(name: str) -> SuiteModel:
    """A tiny-config HF model (seed 0), its input (token ids or an image) and PyTorch's outputs."""
    import torch

    configs = hf_configs()
    if name not in configs:
        raise KeyError(f"unknown HF architecture {name!r}; known: {', '.join(configs)}")
    build, kind = configs[name]
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    if kind == "ids":
        args, names = (torch.randint(0, VOCAB, (1, SEQ), generator=g),), ("input_ids",)
    else:
        args, names = (torch.randn(1, 3, IMAGE, IMAGE, generator=g),), ("pixel_values",)
    module = hf_module(_randomize_batch_norms(build()), names)
    with torch.no_grad():
        out = module(*args)
    reference = [v.numpy() for v in out.values()] if hasattr(out, "values") else [out.numpy()]
    return SuiteModel(name, "torch", module, tuple(a.numpy() for a in args), reference, args)


def _randomize_batch_norms(model: Any) -> Any:
    """Random batch-norm statistics and affine terms (seeded): with the initial ones (mean 0, variance 1)
    MobileNetV2's outputs come out ~1e-25 and a comparison with them would check almost nothing."""
    import torch

    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            n = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model


# == ONNX: the light networks and the stored operator cases =======================================
def _onnx_data() -> str:
    import onnx

    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")


def light_input(model: Any) -> dict[str, np.ndarray]:
    """ONNX's runner's dummy input for a light network (arange / n, as `Runner.generate_dummy_data`)."""
    inits = {i.name for i in model.graph.initializer}
    (value,) = [v for v in model.graph.input if v.name not in inits]
    shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
    n = int(np.prod(shape))
    return {value.name: (np.arange(n).reshape(shape) / n).astype(np.float32)}


def onnx_light(name: str) -> SuiteModel:
    """A light network from the onnx wheel; its reference comes from onnxruntime."""
    import onnx
    import onnxruntime as ort

    path = os.path.join(_onnx_data(), "light", f"light_{name}.onnx")
    if not os.path.exists(path):
        raise KeyError(f"unknown ONNX light network {name!r}; known: {', '.join(LIGHT)}")
    model = onnx.load(path)
    feeds = light_input(model)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return SuiteModel(name, "onnx", model, tuple(feeds.values()), list(session.run(None, feeds)))


@functools.cache
def operator_case_dirs() -> dict[str, str]:
    """Stored operator case name -> its folder (model.onnx, test_data_set_0/)."""
    from onnx.backend.test.loader import load_model_tests

    return {t.name: t.model_dir for kind in OPERATOR_KINDS for t in load_model_tests(kind=kind)}


def onnx_operator_case(name: str) -> SuiteModel:
    """A stored operator case: its model, stored inputs and stored outputs."""
    import onnx
    from onnx import numpy_helper

    folder = operator_case_dirs().get(name)
    if folder is None:
        raise KeyError(f"unknown ONNX operator case {name!r}")

    def tensors(kind: str) -> list[np.ndarray]:
        files = sorted(glob.glob(os.path.join(folder, "test_data_set_0", f"{kind}_*.pb")))
        return [numpy_helper.to_array(onnx.load_tensor(f)) for f in files]

    model = onnx.load(os.path.join(folder, "model.onnx"))
    return SuiteModel(name, "onnx", model, tuple(tensors("input")), tensors("output"))


# == Keras applications ============================================================================
KERAS_APPS = ("MobileNetV2", "ResNet50")


def keras_app(name: str) -> SuiteModel:
    """A `keras.applications` model at 32x32, random weights and batch-norm statistics, logits head."""
    import keras

    if name not in KERAS_APPS:
        raise KeyError(f"unknown Keras application {name!r}; known: {', '.join(KERAS_APPS)}")
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(
        weights=None, input_shape=(IMAGE, IMAGE, 3), classes=10, classifier_activation=None
    )
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])  # fmt: skip
    x = np.random.default_rng(0).standard_normal((1, IMAGE, IMAGE, 3)).astype(np.float32)
    return SuiteModel(name, "tensorflow", model, (x,), [model(x, training=False).numpy()])


def suite_names(suite: str) -> list[str]:
    """The models of a suite, in report order."""
    if suite == "hf":
        return list(HF_ARCHITECTURES)
    if suite == "onnx-light":
        return list(LIGHT)
    if suite == "onnx-ops":
        return sorted(operator_case_dirs())
    if suite == "keras":
        return list(KERAS_APPS)
    raise ValueError(f"unknown suite {suite!r}; suites: {', '.join(SUITES)}")


#: suite -> builder of one of its models by name
BUILDERS: dict[str, Callable[[str], SuiteModel]] = {
    "hf": hf_model,
    "onnx-light": onnx_light,
    "onnx-ops": onnx_operator_case,
    "keras": keras_app,
}
