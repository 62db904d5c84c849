"""Greedy generation by our compiler (mlc_lab.llm) against transformers' own `generate`, on TVM and MLIR.

One compile per (family, backend), module-scoped: compiling is most of this file's time.
"""

import numpy as np
import pytest
import torch

from mlc_lab.llm import GenerationError, UnsupportedModelError, compile_causal_lm
from mlc_lab.llm.examples import example_model

MAX_SEQ_LEN = 96
NEW_TOKENS = 64


@pytest.fixture(scope="module")
def models():
    return {family: example_model(family) for family in ("llama", "gpt2")}


@pytest.fixture(scope="module")
def compiled(models):
    cache = {}

    def get(family: str, backend: str):
        if (family, backend) not in cache:
            cache[family, backend] = compile_causal_lm(models[family], backend=backend, max_seq_len=MAX_SEQ_LEN)
        return cache[family, backend]

    return get


def reference(model, ids, new_tokens, **kwargs):
    with torch.no_grad():
        return model.generate(ids, max_new_tokens=new_tokens, do_sample=False, **kwargs)


def prompt(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 128, (1, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", ["tvm", "mlir"])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_greedy_generation_equals_transformers(models, compiled, family, backend):
    lm = compiled(family, backend)
    ids = prompt(7)
    ours = lm.generate(ids, max_new_tokens=NEW_TOKENS)
    assert ours.dtype == torch.int64 and ours.shape == (1, 7 + NEW_TOKENS)
    assert torch.equal(ours, reference(models[family], ids, NEW_TOKENS))
    assert lm.stats.prompt_tokens == 7 and lm.stats.new_tokens == NEW_TOKENS
    assert lm.stats.prefill_ms > 0 and lm.stats.decode_tokens_per_s > 0


def test_one_prefill_serves_every_prompt_length(models, compiled):
    lm = compiled("llama", "tvm")
    prefill = lm.prefill
    for n in (1, 2, 13, 40):
        ids = prompt(n, seed=n)
        assert torch.equal(lm.generate(ids, max_new_tokens=6), reference(models["llama"], ids, 6)), n
    assert lm.prefill is prefill  # nothing was compiled for a new length


def test_eos_stops_early_and_is_kept(models, compiled):
    lm = compiled("gpt2", "tvm")
    ids = prompt(5, seed=3)
    full = reference(models["gpt2"], ids, 12)
    eos = int(full[0, 5 + 4])  # the 5th new token
    first = 5 + int(np.flatnonzero(full[0, 5:].numpy() == eos)[0])  # it may occur earlier too
    ours = lm.generate(ids, max_new_tokens=12, eos_token_id=eos)
    assert torch.equal(ours, full[:, : first + 1])
    assert torch.equal(ours, reference(models["gpt2"], ids, 12, eos_token_id=eos))
    assert torch.equal(lm.generate(ids, max_new_tokens=12), full)  # without eos_token_id: all 12


def test_zero_new_tokens_returns_the_prompt(compiled):
    ids = prompt(4)
    assert torch.equal(compiled("llama", "tvm").generate(ids, max_new_tokens=0), ids)


def test_prompt_longer_than_the_cache_is_refused(compiled):
    lm = compiled("llama", "tvm")
    with pytest.raises(GenerationError, match=r"exceeds max_seq_len=96"):
        lm.generate(prompt(90), max_new_tokens=10)
    with pytest.raises(GenerationError, match=r"batch 1"):
        lm.generate(torch.zeros(2, 3, dtype=torch.int64), max_new_tokens=1)
    with pytest.raises(GenerationError, match=r"token id 500 is outside the vocabulary"):
        lm.generate(torch.tensor([[1, 500]]), max_new_tokens=1)
    with pytest.raises(GenerationError, match=r"eos_token_id must be one int token id or None, got \[1, 2\]"):
        lm.generate(prompt(3), max_new_tokens=1, eos_token_id=[1, 2])


def test_unsupported_architecture_is_named():
    import transformers as hf

    model = hf.OPTForCausalLM(hf.OPTConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, ffn_dim=32,
                                           num_attention_heads=2, word_embed_proj_dim=16))  # fmt: skip
    with pytest.raises(UnsupportedModelError, match=r"model type 'opt'.*supported: llama, gpt2"):
        compile_causal_lm(model)
    with pytest.raises(ValueError, match=r"quantize must be one of"):
        compile_causal_lm(example_model("llama"), quantize="int3")


def test_decode_writes_the_cache_in_place(compiled):
    """TVM decode returns the very cache buffers it was given, with only row `position` of each layer changed."""
    lm = compiled("llama", "tvm")
    logits, k, v = lm.prefill_step(prompt(5).numpy(), np.arange(5), np.array([4]))
    k_before, v_before = np.from_dlpack(k).copy(), np.from_dlpack(v).copy()
    pointers = np.from_dlpack(k).ctypes.data, np.from_dlpack(v).ctypes.data
    _, k2, v2 = lm.decode_step(np.array([[int(logits.argmax())]]), np.array([5]), k, v)
    assert (np.from_dlpack(k2).ctypes.data, np.from_dlpack(v2).ctypes.data) == pointers
    for before, after in ((k_before, np.from_dlpack(k2)), (v_before, np.from_dlpack(v2))):
        changed = np.argwhere((before != after).any(axis=(1, 2, 4)))  # (layer, row) pairs that changed
        assert {tuple(x) for x in changed} == {(layer, 5) for layer in range(before.shape[0])}
    main = lm.decode.runner.compiled.module["main"].script()
    assert main.count("R.call_tir_inplace(") == 2 * lm.spec.num_layers  # K and V of every layer


def test_mlir_decode_writes_the_cache_in_place(compiled):
    """MLIR (IREE): the caches stay IREE device arrays from step to step (no NumPy copy in the loop), and decode
    writes row `position` of each layer into the very buffers it was given (`iree.abi.output` ties each
    cache argument to its result; without it IREE alternates two buffers)."""
    import iree.runtime as rt

    lm = compiled("llama", "mlir")
    from mlc_lab.codegen.mlir import emit

    head = next(line for line in emit(lm.decode.optimized).text.splitlines() if "func.func @main" in line)
    assert head.count("iree.abi.output") == 2  # k_cache -> result 1, v_cache -> result 2
    logits, k, v = lm.prefill_step(prompt(5).numpy(), np.arange(5), np.array([4]))
    assert isinstance(k, rt.DeviceArray) and isinstance(v, rt.DeviceArray)
    k_before, v_before = k.to_host().copy(), v.to_host().copy()
    pointers = k.to_host().ctypes.data, v.to_host().ctypes.data
    _, k2, v2 = lm.decode_step(np.array([[int(logits.argmax())]]), np.array([5]), k, v)
    assert (k2.to_host().ctypes.data, v2.to_host().ctypes.data) == pointers
    for before, after in ((k_before, k2.to_host()), (v_before, v2.to_host())):
        changed = np.argwhere((before != after).any(axis=(1, 2, 4)))  # (layer, row) pairs that changed
        assert {tuple(x) for x in changed} == {(layer, 5) for layer in range(before.shape[0])}
