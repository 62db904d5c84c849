"""The capstone's model: a tiny DistilBERT encoder, random weights, nothing downloaded.

DistilBERT appears nowhere else in the book (the chapters show GPT-2, BERT, ResNet and the zoo), so
compiling it is the reader's own work. The student's process and the grader both build it from the
same seed, which is how the grader gets PyTorch's answer without trusting the student's copy.
"""

from __future__ import annotations

from typing import Any

#: The tiny config: two layers, two heads of 16, an 8-token sequence over a 128-word vocabulary.
CONFIG = {"vocab_size": 128, "max_position_embeddings": 16, "n_layers": 2, "n_heads": 2, "dim": 32, "hidden_dim": 64}
SEQ = 8


def distilbert(seed: int = 0) -> Any:
    """A `torch.nn.Module` mapping token ids `[1, SEQ]` (int64) to the last hidden state `[1, SEQ, dim]`."""
    import torch
    import transformers as hf

    torch.manual_seed(seed)
    encoder = hf.DistilBertModel(hf.DistilBertConfig(**CONFIG)).eval()

    class LastHiddenState(torch.nn.Module):
        """The encoder's `.last_hidden_state` as a plain tensor (one output, no model-output class)."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.encoder(input_ids=input_ids).last_hidden_state

    return LastHiddenState().eval()


def token_ids(seed: int) -> Any:
    """A `[1, SEQ]` int64 array of token ids drawn from `seed`."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, CONFIG["vocab_size"], (1, SEQ)).astype(np.int64)
