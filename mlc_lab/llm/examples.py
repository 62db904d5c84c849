"""Small random-weight causal LMs (nothing downloaded) for tests, benchmarks and the chapter.

`example_model("llama")` is a LLaMA with grouped-query attention (4 query heads, 2 K/V heads);
`example_model("gpt2")` a GPT-2. Weights are drawn with a wider initializer than transformers' default
(0.02) so that the next-token logits are well apart: greedy decoding then does not hinge on ties that
a float32 rounding difference could flip.
"""

from __future__ import annotations

from typing import Any

EXAMPLE_FAMILIES = ("llama", "gpt2")


def example_model(
    family: str, *, vocab: int = 128, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2,
    max_positions: int = 512, seed: int = 0, init: float = 0.1,
) -> Any:  # fmt: skip
    """A transformers causal LM in eval mode with seeded random weights; generation config without eos."""
    import torch
    import transformers as hf

    if family not in EXAMPLE_FAMILIES:
        raise ValueError(f"example_model: unknown family {family!r}; known: {', '.join(EXAMPLE_FAMILIES)}")
    torch.manual_seed(seed)
    if family == "llama":
        config = hf.LlamaConfig(
            vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
            num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=max_positions,
            initializer_range=init, bos_token_id=None, eos_token_id=None, pad_token_id=None,
        )  # fmt: skip
        model = hf.LlamaForCausalLM(config)
    else:
        config = hf.GPT2Config(
            vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=heads, n_positions=max_positions,
            initializer_range=init, bos_token_id=None, eos_token_id=None,
        )  # fmt: skip
        model = hf.GPT2LMHeadModel(config)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0  # silences transformers' "setting pad_token_id" notice
    return model.eval()
