"""What chapter 8's checks and fixtures build on: small Llama configurations and a ranks file."""

from __future__ import annotations

import base64
from pathlib import Path

import torch

# Every size distinct: vocabulary, context, width, heads, key/value groups, hidden width, layers.
SMALL_LLAMA = {
    "vocab_size": 37,
    "context_length": 24,
    "emb_dim": 24,
    "n_heads": 6,
    "n_layers": 2,
    "hidden_dim": 40,
    "n_kv_groups": 2,
    "rope_base": 500_000.0,
    "rope_freq": None,
    "dtype": torch.float32,
}

# Llama 3.1's scaling with a short original context, so that pairs of a 64-wide head fall into all
# three regimes (kept, interpolated, slowed down).
LLAMA31_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_context_length": 8192}

# Merges after the 256 single bytes, each the concatenation of two earlier tokens. "34" ranks between
# "12" and "123", so that digits split in threes (Llama 3) and in one run (GPT-2) merge differently.
_MERGES = [
    "th",
    "he",
    "the",
    " t",
    " the",
    "in",
    "ing",
    "er",
    " a",
    "an",
    "and",
    " and",
    "re",
    "is",
    " is",
    "it",
    "'s",
    "ll",
    "'ll",
    "12",
    "34",
    "123",
    "ok",
    "es",
    "en",
    "on",
    " o",
    " on",
    "wo",
    "or",
    "ld",
    "wor",
    "world",
    "He",
    "Hel",
    "Hell",
    "Hello",
    "  ",
    "\n\n",
    "TH",
    "THE",
    "em",
    "them",
    "en",
]


def ranks() -> dict[bytes, int]:
    """A small byte-level BPE vocabulary: the 256 bytes, then the merges above, in rank order."""
    table = {bytes([b]): b for b in range(256)}
    for merge in _MERGES:
        table.setdefault(merge.encode(), len(table))
    return table


def write_ranks(path: Path) -> Path:
    """Writes ranks() in tiktoken's format (`base64(token) rank` per line), as Llama 3's tokenizer.model."""
    lines = [f"{base64.b64encode(token).decode()} {rank}" for token, rank in ranks().items()]
    path.write_text("\n".join(lines) + "\n")
    return path
