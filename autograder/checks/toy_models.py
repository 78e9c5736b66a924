"""Tiny stand-in language models for checking decoding code apart from any GPT implementation."""
from __future__ import annotations

import torch
from torch import nn

from autograder.compare import fail


class WindowLanguageModel(nn.Module):
    """A deterministic next-token model with a fixed context, like a GPTModel's position table.

    The logits at position t depend on every token at positions <= t and on where
    each sits, so generating from the wrong position or cropping the wrong end of
    the context changes the result. Given more than `context_size` tokens it fails
    the check with a message, where a GPTModel would raise an IndexError.
    """

    def __init__(self, vocab_size: int = 23, context_size: int = 4, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.context_size = context_size
        self.token_table = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=generator))
        self.position_table = nn.Parameter(torch.randn(context_size, vocab_size, generator=generator))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) int64, num_tokens <= context_size -> logits (batch, num_tokens, vocab_size)."""
        if idx.dim() != 2:
            fail(f"the model was called with a tensor of shape {tuple(idx.shape)}; it takes (batch, num_tokens) token ids")
        if idx.shape[1] > self.context_size:
            fail(f"the model was given {idx.shape[1]} tokens but its context holds {self.context_size}: "
                 "crop idx to its last context_size tokens before each call")
        return (self.token_table[idx] * self.position_table[: idx.shape[1]]).cumsum(dim=1)
