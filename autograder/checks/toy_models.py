"""Tiny stand-in language models for checking decoding code apart from any GPT implementation."""

from __future__ import annotations

import torch
from torch import nn

from autograder.compare import fail


def expect_ids_that_fit(idx: torch.Tensor, context_size: int, advice: str = "") -> None:
    """Fail the check unless `idx` is a (batch, num_tokens) tensor of at most `context_size` tokens,
    as a stand-in model's forward pass requires; `advice` follows the message on too many tokens."""
    if idx.dim() != 2:
        fail(f"the model was called with a tensor of shape {tuple(idx.shape)}; it takes (batch, num_tokens) token ids")
    if idx.shape[1] > context_size:
        fail(
            f"the model was given {idx.shape[1]} tokens but its context holds {context_size}"
            + (f": {advice}" if advice else "")
        )


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
        expect_ids_that_fit(idx, self.context_size, "crop idx to its last context_size tokens before each call")
        return (self.token_table[idx] * self.position_table[: idx.shape[1]]).cumsum(dim=1)


class TinyLanguageModel(nn.Module):
    """A GPTModel-shaped model small enough for many training steps inside a check.

    It has GPTModel's `tok_emb`, `pos_emb` and `out_head` (so code that reads the
    context size from `pos_emb` works) and dropout between embeddings and head.
    Every forward call is logged in `calls` as (training, grad_enabled).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        emb_dim: int = 8,
        drop_rate: float = 0.0,
        seed: int = 0,
        weight_scale: float = 1.0,
    ):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)
        self.drop = nn.Dropout(drop_rate)
        self.out_head = nn.Linear(emb_dim, vocab_size, bias=False)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=generator) * weight_scale)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) int64, num_tokens <= context_length -> logits (batch, num_tokens, vocab_size)."""
        if idx.shape[-1] > self.pos_emb.num_embeddings:
            fail(f"the model was given {idx.shape[-1]} tokens but its context holds {self.pos_emb.num_embeddings}")
        self.calls.append((self.training, torch.is_grad_enabled()))
        positions = torch.arange(idx.shape[-1], device=idx.device)
        return self.out_head(self.drop(self.tok_emb(idx) + self.pos_emb(positions)))


class CharTokenizer:
    """A tokenizer with tiktoken's encode/decode interface over a small alphabet: one id per character."""

    def __init__(self, alphabet: str):
        self.alphabet = alphabet
        self.ids = {char: i for i, char in enumerate(alphabet)}

    def encode(self, text: str, allowed_special=frozenset(), **_) -> list[int]:
        return [self.ids[char] for char in text]

    def decode(self, ids) -> str:
        return "".join(self.alphabet[i] for i in ids)


class FixedLogitsModel(nn.Module):
    """Gives the same next-token logits at every position, whatever the tokens: sampling draws from one distribution."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) -> (batch, num_tokens, vocab_size), every row `logits`."""
        return self.logits.expand(*idx.shape, -1).clone()


class CountingModel(nn.Module):
    """Strongly prefers the token after the current one: (token + 1) % vocab_size, so greedy output counts up.

    Every forward call is logged in `grad_enabled` as torch.is_grad_enabled().
    """

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.grad_enabled: list[bool] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) -> (batch, num_tokens, vocab_size) logits, 20 for the next count, 0 elsewhere."""
        self.grad_enabled.append(torch.is_grad_enabled())
        return 20.0 * nn.functional.one_hot((idx + 1) % self.vocab_size, self.vocab_size).float()
