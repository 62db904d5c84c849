"""What a decoder-only language model is made of, read from a `transformers` config and state dict.

The compiled decoder is written in our own IR (`mlc_lab.llm.decoder`) from this description, as
MLC-LLM does, instead of tracing transformers' Python (its cache classes and generation loop are not a
graph). One `DecoderSpec` covers both families: they differ in the norm (RMS vs layer norm), the
positions (rotary vs learned), the MLP (gated SiLU vs GELU) and where the weights are stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError

#: Model types (`config.model_type`) this package can compile.
SUPPORTED_MODEL_TYPES = ("llama", "gpt2")


class UnsupportedModelError(MlcLabError, ValueError):
    """The model is not a decoder this package knows how to write, or uses a feature it does not handle."""


@dataclass(frozen=True)
class DecoderSpec:
    """Sizes and choices of a decoder; weights live in `LayerWeights`/`DecoderWeights`."""

    model_type: str
    num_layers: int
    hidden: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab: int
    norm: str  # "rms" or "layer"
    norm_eps: float
    mlp: str  # "gated_silu" or "gelu_tanh"
    positions: str  # "rope" or "learned"
    max_positions: int  # the model's own limit (learned position table size, or rope's config)

    @property
    def group(self) -> int:
        """Query heads per K/V head (grouped-query attention; 1 = plain multi-head)."""
        return self.num_heads // self.num_kv_heads


@dataclass
class LayerWeights:
    """One block's weights as NumPy float32, dense weights stored [out, in] (torch.nn.Linear's order)."""

    norm1: tuple[np.ndarray, np.ndarray | None]
    norm2: tuple[np.ndarray, np.ndarray | None]
    q: tuple[np.ndarray, np.ndarray | None]
    k: tuple[np.ndarray, np.ndarray | None]
    v: tuple[np.ndarray, np.ndarray | None]
    o: tuple[np.ndarray, np.ndarray | None]
    mlp: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)


@dataclass
class DecoderWeights:
    embed: np.ndarray  # [vocab, hidden]
    layers: list[LayerWeights]
    final_norm: tuple[np.ndarray, np.ndarray | None]
    lm_head: np.ndarray  # [vocab, hidden]
    positions: np.ndarray | None = None  # learned [max_positions, hidden]
    rope_inv_freq: np.ndarray | None = None  # [head_dim / 2]
    rope_scaling: float = 1.0  # transformers' attention_scaling (cos and sin are multiplied by it)


def model_type(model: Any) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", type(model).__name__))


def read_model(model: Any) -> tuple[DecoderSpec, DecoderWeights]:
    """The spec and weights of a transformers causal LM; an unsupported one is an error naming its type."""
    kind = model_type(model)
    if kind not in SUPPORTED_MODEL_TYPES:
        raise UnsupportedModelError(
            f"model type {kind!r} ({type(model).__name__}) is not supported by mlc_lab.llm; "
            f"supported: {', '.join(SUPPORTED_MODEL_TYPES)}"
        )
    state = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    return _llama(model, state) if kind == "llama" else _gpt2(model, state)


def _bias(state: dict[str, np.ndarray], name: str) -> np.ndarray | None:
    return state.get(name)


def _llama(model: Any, state: dict[str, np.ndarray]) -> tuple[DecoderSpec, DecoderWeights]:
    c = model.config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    if getattr(c, "hidden_act", "silu") != "silu":
        raise UnsupportedModelError(f"model type 'llama': hidden_act {c.hidden_act!r} (only 'silu' is supported)")
    spec = DecoderSpec(
        "llama", c.num_hidden_layers, c.hidden_size, heads, c.num_key_value_heads or heads, head_dim,
        c.vocab_size, "rms", float(c.rms_norm_eps), "gated_silu", "rope", int(c.max_position_embeddings),
    )  # fmt: skip
    layers = []
    for i in range(spec.num_layers):
        p = f"model.layers.{i}."

        def lin(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray | None]:
            return state[p + name + ".weight"], _bias(state, p + name + ".bias")

        layers.append(LayerWeights(
            norm1=(state[p + "input_layernorm.weight"], None),
            norm2=(state[p + "post_attention_layernorm.weight"], None),
            q=lin("self_attn.q_proj"), k=lin("self_attn.k_proj"), v=lin("self_attn.v_proj"), o=lin("self_attn.o_proj"),
            mlp={"gate": lin("mlp.gate_proj"), "up": lin("mlp.up_proj"), "down": lin("mlp.down_proj")},
        ))  # fmt: skip
    rotary = model.model.rotary_emb
    weights = DecoderWeights(
        embed=state["model.embed_tokens.weight"],
        layers=layers,
        final_norm=(state["model.norm.weight"], None),
        lm_head=state.get("lm_head.weight", state["model.embed_tokens.weight"]),
        rope_inv_freq=rotary.inv_freq.detach().float().numpy(),
        rope_scaling=float(getattr(rotary, "attention_scaling", 1.0)),
    )
    return spec, weights


def _gpt2(model: Any, state: dict[str, np.ndarray]) -> tuple[DecoderSpec, DecoderWeights]:
    c = model.config
    if c.activation_function not in ("gelu_new", "gelu_pytorch_tanh"):
        raise UnsupportedModelError(
            f"model type 'gpt2': activation_function {c.activation_function!r} (supported: gelu_new, gelu_pytorch_tanh)"
        )
    if c.scale_attn_by_inverse_layer_idx or c.reorder_and_upcast_attn or not c.scale_attn_weights:
        raise UnsupportedModelError("model type 'gpt2': only the default attention scaling is supported")
    heads, hidden = c.n_head, c.n_embd
    spec = DecoderSpec(
        "gpt2", c.n_layer, hidden, heads, heads, hidden // heads, c.vocab_size, "layer",
        float(c.layer_norm_epsilon), "gelu_tanh", "learned", int(c.n_positions),
    )  # fmt: skip
    layers = []
    for i in range(spec.num_layers):
        p = f"transformer.h.{i}."
        # GPT-2's Conv1D stores [in, out] (y = x @ W + b): transposed here to dense's [out, in]
        qkv_w, qkv_b = state[p + "attn.c_attn.weight"].T, state[p + "attn.c_attn.bias"]
        q, k, v = (np.ascontiguousarray(w) for w in np.split(qkv_w, 3, axis=0))
        bq, bk, bv = np.split(qkv_b, 3)

        def conv1d(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray | None]:
            return np.ascontiguousarray(state[p + name + ".weight"].T), state[p + name + ".bias"]

        layers.append(LayerWeights(
            norm1=(state[p + "ln_1.weight"], state[p + "ln_1.bias"]),
            norm2=(state[p + "ln_2.weight"], state[p + "ln_2.bias"]),
            q=(q, bq), k=(k, bk), v=(v, bv), o=conv1d("attn.c_proj"),
            mlp={"fc": conv1d("mlp.c_fc"), "proj": conv1d("mlp.c_proj")},
        ))  # fmt: skip
    weights = DecoderWeights(
        embed=state["transformer.wte.weight"],
        layers=layers,
        final_norm=(state["transformer.ln_f.weight"], state["transformer.ln_f.bias"]),
        lm_head=state.get("lm_head.weight", state["transformer.wte.weight"]),
        positions=state["transformer.wpe.weight"],
    )
    return spec, weights
