"""Hugging Face `transformers` models through the PyTorch frontend, on every backend.

Each architecture is built from a tiny config with random weights (nothing is downloaded), imported once
(`torch.export` + the frontend) and compiled for the interpreter, TVM and MLIR; every output must equal
the model's own PyTorch output to 1e-4 of its scale, in the model's own output class (`out.logits`).
The decoder LMs and BERT also run with an attention mask that pads the first tokens, so int64 ids and
masks, comparisons and `where` run on the user's data on every backend.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pytest
import torch
import transformers as hf

import mlc_lab
from mlc_lab.api import import_model
from mlc_lab.frontends.errors import FrontendError
from mlc_lab.interop.model_suites import IMAGE, SEQ, VOCAB, hf_configs, hf_module

BACKENDS = ["interpreter", "tvm", "mlir"]
#: max |compiled - PyTorch| over max |PyTorch|, per output tensor
RELATIVE_TOLERANCE = 1e-4


def _ids() -> torch.Tensor:
    return torch.randint(0, VOCAB, (1, SEQ), generator=torch.Generator().manual_seed(0))


def _padding_mask() -> torch.Tensor:
    mask = torch.ones(1, SEQ, dtype=torch.int64)
    mask[0, :2] = 0  # left padding: the first two tokens are masked out
    return mask


def _image() -> torch.Tensor:
    return torch.randn(1, 3, IMAGE, IMAGE, generator=torch.Generator().manual_seed(0))


#: name -> model builder: the tiny configs `mlc-lab coverage` uses
BUILD = {name: build for name, (build, _) in hf_configs().items()}


#: name -> (model builder, example inputs, keyword names of those inputs)
CASES: dict[str, tuple[Callable[[], torch.nn.Module], Callable[[], tuple[torch.Tensor, ...]], tuple[str, ...]]] = {
    "gpt2": (BUILD["gpt2"], lambda: (_ids(),), ("input_ids",)),
    "llama": (BUILD["llama"], lambda: (_ids(),), ("input_ids",)),
    "bert": (BUILD["bert"], lambda: (_ids(),), ("input_ids",)),
    "vit": (BUILD["vit"], lambda: (_image(),), ("pixel_values",)),
    "resnet": (BUILD["resnet"], lambda: (_image(),), ("pixel_values",)),
    "mobilenet_v2": (BUILD["mobilenet_v2"], lambda: (_image(),), ("pixel_values",)),
    "convnext": (BUILD["convnext"], lambda: (_image(),), ("pixel_values",)),
    # the same models reading a padding mask: int64 ids and masks, comparisons and where at run time
    "gpt2_masked": (BUILD["gpt2"], lambda: (_ids(), _padding_mask()), ("input_ids", "attention_mask")),
    "llama_masked": (BUILD["llama"], lambda: (_ids(), _padding_mask()), ("input_ids", "attention_mask")),
    "bert_masked": (BUILD["bert"], lambda: (_ids(), _padding_mask()), ("input_ids", "attention_mask")),
}


@functools.cache
def case(name: str):
    """(model in eval mode, example inputs, PyTorch's output, the imported graph), built once per module run."""
    build, inputs, names = CASES[name]
    torch.manual_seed(0)
    model = hf_module(build(), names)
    args = inputs()
    with torch.no_grad():
        expected = model(*args)
    return model, args, expected, import_model(model, args)


def assert_same_outputs(got, expected) -> None:
    """The same output class and keys, and every tensor equal to 1e-4 of its scale."""
    assert type(got) is type(expected)
    assert list(got.keys()) == list(expected.keys())
    for key in expected.keys():
        g, e = np.asarray(got[key]), expected[key].numpy()
        assert g.shape == e.shape and g.dtype == e.dtype, key
        scale = float(np.abs(e).max())
        assert scale > 0, f"{key}: PyTorch's output is all zeros, the comparison would be empty"
        error = float(np.abs(g - e).max()) / scale
        assert error <= RELATIVE_TOLERANCE, f"{key}: max error {error:.2e} of the output's scale"


#: (architecture, backend) -> why it is expected to fail; strict, so a fix shows up as a failure to remove it
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(CASES))
def test_hf_model_equals_pytorch(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    if (name, backend) in KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(reason=KNOWN_FAILURES[name, backend], strict=True))
    model, args, expected, graph = case(name)
    compiled = mlc_lab.compile(graph, backend=backend)
    assert_same_outputs(compiled(*args), expected)


def test_compile_takes_the_hf_model_itself() -> None:
    """The user's path: `mlc_lab.compile(model, inputs)` on the model object, result in its own class."""
    model, args, expected, _ = case("bert_masked")
    compiled = mlc_lab.compile(model, args, backend="interpreter")
    out = compiled(*args)
    assert isinstance(out, hf.modeling_outputs.BaseModelOutputWithPoolingAndCrossAttentions)
    assert_same_outputs(out, expected)


def test_masks_and_ids_stay_integer_and_bool_in_the_graph() -> None:
    """ids reach `take` as int64 and the padding mask is compared as int64, producing bool: no silent casts."""
    graph = case("bert_masked")[3]
    (ids, mask) = graph.inputs
    assert (ids.dtype, mask.dtype) == ("int64", "int64")
    takes = [n for n in graph.nodes if n.op == "take"]
    assert takes and all(n.inputs[1].dtype == "int64" for n in takes)
    assert any(n.dtype == "bool" and mask in n.inputs for n in graph.nodes)


def test_a_kv_cache_output_is_refused_with_the_fix() -> None:
    """HF decoder configs default to use_cache=True: the cache object cannot be exported; the error says what to set."""
    config = hf.GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=1, n_head=2)
    with pytest.raises(FrontendError, match="use_cache=False"):
        import_model(hf.GPT2LMHeadModel(config).eval(), (_ids(),))
