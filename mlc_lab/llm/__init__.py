"""Compiling decoder-only language models (driver level: it calls `mlc_lab.compile`).

`compile_causal_lm(model, backend=..., max_seq_len=..., quantize=...)` -> `CompiledCausalLM` with
`.generate(input_ids, max_new_tokens=N, eos_token_id=None)`.
"""

from mlc_lab.llm.generate import (
    CompiledCausalLM,
    GenerationError,
    GenerationStats,
    QuantizationUnavailable,
    compile_causal_lm,
)
from mlc_lab.llm.spec import SUPPORTED_MODEL_TYPES, DecoderSpec, UnsupportedModelError

__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "CompiledCausalLM",
    "DecoderSpec",
    "GenerationError",
    "GenerationStats",
    "QuantizationUnavailable",
    "UnsupportedModelError",
    "compile_causal_lm",
]
