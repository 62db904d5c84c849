"""`compile_causal_lm(model)`: a transformers causal LM compiled to two functions, and greedy generation.

    lm = mlc_lab.llm.compile_causal_lm(model, backend="tvm", max_seq_len=256)
    tokens = lm.generate(input_ids, max_new_tokens=64)     # prompt + 64 tokens, a torch.LongTensor
    lm.stats                                               # prefill ms, decode tokens/s of that call

Prefill runs the prompt once and fills the K/V cache; each decode step runs one token against the
cache (`mlc_lab.llm.decoder`). The loop itself (argmax, stopping) is Python: one argmax over the
vocabulary per token, as transformers' greedy search does.

Prefill's prompt length: on TVM and MLIR it is a symbolic dimension (`SymDim("n", upper=max_seq_len)`;
MLIR's `tensor<1x?xi64>`), so one compiled prefill runs every length at its own size. A backend that
compiles static shapes only gets the prompt padded to max_seq_len (causal attention: the padding never
reaches a real token): also one compiled prefill for every length, at max_seq_len's cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlc_lab.errors import MlcLabError
from mlc_lab.ir.types import SymDim
from mlc_lab.llm.decoder import decode_graph, prefill_graph
from mlc_lab.llm.runtime import steps_for
from mlc_lab.llm.spec import DecoderSpec, UnsupportedModelError, model_type, read_model

QUANTIZE_MODES = (None, "int8")
#: Backends whose code generator takes symbolic dimensions (the others get a padded, static prefill).
SYMBOLIC_BACKENDS = ("tvm", "mlir", "interpreter")


class QuantizationUnavailable(MlcLabError, RuntimeError):
    """quantize= was asked for, but the passes that quantize are not part of this mlc_lab."""


class GenerationError(MlcLabError, ValueError):
    """A generate() call the compiled model cannot serve (too long for its cache, a batch, bad ids)."""


@dataclass(frozen=True)
class GenerationStats:
    """Timings of one `generate` call (wall clock, this process)."""

    prompt_tokens: int
    new_tokens: int
    prefill_ms: float
    decode_seconds: float  # all decode steps together (the first new token comes from prefill)

    @property
    def decode_tokens_per_s(self) -> float:
        steps = self.new_tokens - 1
        return steps / self.decode_seconds if steps > 0 and self.decode_seconds > 0 else float("nan")

    def __str__(self) -> str:
        return (
            f"{self.prompt_tokens} prompt tokens, prefill {self.prefill_ms:.2f} ms; "
            f"{self.new_tokens} new tokens, decode {self.decode_tokens_per_s:.0f} tokens/s"
        )


class CompiledCausalLM:
    """A decoder compiled as `prefill` and `decode` (CompiledModels of the given backend)."""

    def __init__(
        self, spec: DecoderSpec, prefill: Any, decode: Any, max_seq_len: int, backend: str, quantize: str | None = None
    ) -> None:
        self.spec = spec
        self.quantize = quantize
        self.prefill = prefill  #: prompt -> logits of its last token, K/V cache (a CompiledModel)
        self.decode = decode  #: one token at a position + cache -> logits, cache (a CompiledModel)
        self.max_seq_len = max_seq_len
        self.backend = backend
        #: the prompt is padded to max_seq_len (a static-shape prefill) rather than run at its own length
        self.pads_prompt = all(x.type.is_static for x in prefill.optimized.inputs)
        self.stats: GenerationStats | None = None  #: timings of the last generate() call
        #: (ids, positions, last) -> (logits, k cache, v cache); on TVM the caches are TVM tensors
        self.prefill_step = steps_for(prefill)
        #: (ids, position, k cache, v cache) -> (logits, k cache, v cache); on TVM the caches returned are the
        #: buffers passed in, written in place (`cache_write`)
        self.decode_step = steps_for(decode)

    def _check_prompt(self, input_ids: Any, max_new_tokens: int) -> np.ndarray:
        ids = np.asarray(input_ids.detach().cpu().numpy() if hasattr(input_ids, "detach") else input_ids)
        if ids.ndim == 1:
            ids = ids[None]
        if ids.ndim != 2 or ids.shape[0] != 1:
            raise GenerationError(f"generate: input_ids must be [1, n] (batch 1), got shape {list(ids.shape)}")
        if ids.dtype.kind not in "iu":
            raise GenerationError(f"generate: input_ids must be integers, got {ids.dtype}")
        n = ids.shape[1]
        if n == 0:
            raise GenerationError("generate: the prompt is empty (input_ids has 0 tokens)")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
            raise GenerationError(f"generate: max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
        if n + max_new_tokens > self.max_seq_len:
            raise GenerationError(
                f"generate: prompt of {n} tokens + {max_new_tokens} new tokens = {n + max_new_tokens} "
                f"exceeds max_seq_len={self.max_seq_len} (compile with a larger max_seq_len)"
            )
        if ids.min() < 0 or ids.max() >= self.spec.vocab:
            bad = int(ids[(ids < 0) | (ids >= self.spec.vocab)][0])
            raise GenerationError(f"generate: token id {bad} is outside the vocabulary [0, {self.spec.vocab})")
        return ids.astype(np.int64)

    def _prefill(self, ids: np.ndarray) -> tuple[np.ndarray, Any, Any]:
        """Logits after the prompt, and the caches (padded to max_seq_len first if `pads_prompt`)."""
        n = ids.shape[1]
        if self.pads_prompt:
            padded = np.zeros((1, self.max_seq_len), np.int64)
            padded[0, :n] = ids[0]
            return self.prefill_step(padded, np.arange(self.max_seq_len), np.array([n - 1]))
        return self.prefill_step(ids, np.arange(n), np.array([n - 1]))

    def next_token_logits(self, input_ids: Any) -> np.ndarray:
        """The logits [vocab] of the token after the prompt `input_ids` ([1, n] or [n]): one prefill."""
        ids = self._check_prompt(input_ids, 0)
        return np.asarray(self._prefill(ids)[0])[0, -1]

    def generate(self, input_ids: Any, max_new_tokens: int = 20, eos_token_id: int | None = None) -> Any:
        """Greedy decoding: the prompt followed by `max_new_tokens` tokens (fewer only if `eos_token_id` is
        generated: it is kept, and generation stops), as a torch.LongTensor [1, n + new]."""
        import torch

        ids = self._check_prompt(input_ids, max_new_tokens)
        token_id = isinstance(eos_token_id, (int, np.integer)) and not isinstance(eos_token_id, bool)
        if eos_token_id is not None and not token_id:
            raise GenerationError(f"generate: eos_token_id must be one int token id or None, got {eos_token_id!r}")
        n = ids.shape[1]
        out: list[int] = []
        start = time.perf_counter()
        decode_start = start
        if max_new_tokens:
            logits, k, v = self._prefill(ids)
            decode_start = time.perf_counter()
            out.append(int(np.argmax(logits[0, -1])))
            while len(out) < max_new_tokens and out[-1] != eos_token_id:
                position = np.array([n + len(out) - 1])
                logits, k, v = self.decode_step(np.array([[out[-1]]]), position, k, v)
                out.append(int(np.argmax(logits[0, -1])))
        end = time.perf_counter()
        self.stats = GenerationStats(n, len(out), (decode_start - start) * 1e3, end - decode_start)
        return torch.cat([torch.as_tensor(ids), torch.tensor([out], dtype=torch.int64).reshape(1, -1)], dim=1)

    def __repr__(self) -> str:
        s = self.spec
        return (
            f"<CompiledCausalLM {s.model_type} ({self.backend}): {s.num_layers} layers, hidden {s.hidden}, "
            f"{s.num_heads} heads / {s.num_kv_heads} kv, max_seq_len {self.max_seq_len}, "
            f"weights {self.quantize or 'fp32'}>"
        )


def compile_causal_lm(
    model: Any, backend: str = "tvm", max_seq_len: int = 256, quantize: str | None = None
) -> CompiledCausalLM:
    """Compile a transformers causal LM (LLaMA family or GPT-2) for greedy generation on `backend`.

    max_seq_len: the K/V cache length; a prompt plus its new tokens must fit in it.
    quantize: None (float32), or "int8" (per-channel int8 weights, when the quantization pass is available).
    """
    from mlc_lab.api import compile as compile_graph

    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"compile_causal_lm: quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or max_seq_len < 1:
        raise ValueError(f"compile_causal_lm: max_seq_len must be a positive int, got {max_seq_len!r}")
    spec, weights = read_model(model)
    if spec.positions == "learned" and max_seq_len > spec.max_positions:
        raise UnsupportedModelError(
            f"model type {model_type(model)!r}: max_seq_len={max_seq_len} exceeds its "
            f"{spec.max_positions} learned positions"
        )
    n = SymDim("n", upper=max_seq_len) if backend in SYMBOLIC_BACKENDS else max_seq_len
    graphs = prefill_graph(spec, weights, max_seq_len, n), decode_graph(spec, weights, max_seq_len)
    prefill, decode = (compile_graph(g, backend=backend, passes=_passes(g, backend, quantize)) for g in graphs)
    return CompiledCausalLM(spec, prefill, decode, max_seq_len, backend, quantize)


def _passes(graph: Any, backend: str, quantize: str | None) -> Any:
    """The default pass preset, or for int8 weights the "int8" one (default + per-channel weight quantization)."""
    if quantize is None:
        return "default"
    from mlc_lab.passes.presets import PASS_PRESETS

    if quantize not in PASS_PRESETS:
        raise QuantizationUnavailable(f"quantize={quantize!r}: this mlc_lab has no {quantize!r} pass preset")
    return quantize
