"""Tiny text classifiers for the checks of chapter 6 and of the chapters that fine-tune one.

A classifier is chapter 4's GPTModel at a tiny size with a two-class `out_head`,
frozen as the book freezes it: only the last transformer block, the final norm
and the head train. It learns from a few fixed batches of token ids and labels,
so a whole run takes milliseconds and its losses, accuracies and final weights
can be recorded from the reference and compared with a submission's. The checks
and the recorder build everything here identically from a seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.modules import randomised
from autograder.compare import fail
from autograder.no_dynamo import compiler_free

if TYPE_CHECKING:
    import pandas as pd

# Small enough for many training steps inside a check; emb_dim differs from the vocabulary size
# and the context, so a head built from the wrong dimension shows.
TINY_GPT = {
    "vocab_size": 40,
    "context_length": 10,
    "emb_dim": 16,
    "n_heads": 2,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": True,
}
NUM_TOKENS = 6  # tokens per example of the classifier runs


def tiny_gpt(seed: int, cfg: dict | None = None) -> nn.Module:
    """Chapter 4's reference GPTModel of configuration `cfg` (TINY_GPT) with random weights drawn from `seed`.

    The norms stay near the identity (scales about 1, shifts 0): a random shift in the final
    norm would add the same vector at every position and give every text the same class.
    """
    from previous_chapters import GPTModel

    model = randomised(GPTModel(cfg or TINY_GPT), seed=seed, std=0.3)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".scale"):
                param += 1.0
            elif name.endswith(".shift"):
                param.zero_()
    return model


def trainable_names(model: nn.Module) -> list[str]:
    """The book's choice: the parameters of out_head, the last transformer block and the final norm."""
    last_block = len(model.trf_blocks) - 1
    prefixes = ("out_head.", f"trf_blocks.{last_block}.", "final_norm.")
    return [name for name, _ in model.named_parameters() if name.startswith(prefixes)]


def tiny_classifier(seed: int, num_classes: int = 2, cfg: dict | None = None) -> nn.Module:
    """tiny_gpt(seed, cfg) with a random num_classes head; everything but trainable_names frozen."""
    model = tiny_gpt(seed, cfg)
    model.out_head = nn.Linear(model.out_head.in_features, num_classes)
    randomised(model.out_head, seed=seed + 1, std=0.3)
    for param in model.parameters():
        param.requires_grad_(False)
    for param in chain(model.out_head.parameters(), model.trf_blocks[-1].parameters(), model.final_norm.parameters()):
        param.requires_grad_(True)
    return model


def labelled_batches(
    num_examples: int,
    batch_size: int,
    generator: torch.Generator,
    num_classes: int = 2,
    vocab_size: int = TINY_GPT["vocab_size"],
    num_tokens: int = NUM_TOKENS,
) -> DataLoader:
    """A loader of (batch, num_tokens) token ids with (batch,) int64 labels, in a fixed order."""
    ids = torch.randint(0, vocab_size, (num_examples, num_tokens), generator=generator)
    labels = torch.randint(0, num_classes, (num_examples,), generator=generator)
    return DataLoader(TensorDataset(ids, labels), batch_size=batch_size, shuffle=False)


def messages_frame(columns: dict) -> pd.DataFrame:
    """A frame of labelled messages from lists: {"Label": [...], "Text": [...], "index": [...]}."""
    import pandas as pd

    return pd.DataFrame({"Label": columns["Label"], "Text": columns["Text"]}, index=columns["index"])


@dataclass
class ClassifierRun:
    """Everything train_classifier_simple takes, freshly built."""

    model: nn.Module
    train_loader: DataLoader
    val_loader: DataLoader
    optimizer: torch.optim.Optimizer


def classifier_run(seed: int = 0, lr: float = 0.01, train_batches: int = 5, batch_size: int = 2) -> ClassifierRun:
    """A fresh run: a tiny classifier, train_batches training and 2 validation batches, AdamW as in the book."""
    generator = torch.Generator().manual_seed(seed)
    model = tiny_classifier(seed)
    train_loader = labelled_batches(train_batches * batch_size, batch_size, generator)
    val_loader = labelled_batches(2 * batch_size, batch_size, generator)
    optimizer = compiler_free(torch.optim.AdamW)(model.parameters(), lr=lr, weight_decay=0.1)
    return ClassifierRun(model, train_loader, val_loader, optimizer)


class ForwardLog:
    """Logs every forward call of `model` as (training, grad_enabled, input shape), from outside the model."""

    def __init__(self, model: nn.Module):
        self.calls: list[tuple[bool, bool, tuple[int, ...]]] = []
        model.register_forward_pre_hook(self._before_forward)

    def _before_forward(self, module: nn.Module, args: tuple) -> None:
        self.calls.append((module.training, torch.is_grad_enabled(), tuple(args[0].shape)))


def expect_token_id_batch(idx: torch.Tensor, vocab_size: int) -> None:
    """Fail, saying what is wrong, unless `idx` is a (batch, num_tokens) int64 batch of ids below `vocab_size`."""
    if idx.dim() != 2:
        fail(f"the model was called with a tensor of shape {tuple(idx.shape)}; it takes a (batch, num_tokens) batch")
    if idx.dtype != torch.long:
        fail(f"the model was called with token ids of dtype {idx.dtype}; token ids are int64")
    if idx.numel() and (idx.min() < 0 or idx.max() >= vocab_size):
        fail(
            f"the model was called with the token id {int(idx.max())}, outside its vocabulary of {vocab_size} "
            "(is the padding id the pad_token_id argument?)"
        )


class TokenVoteClassifier(nn.Module):
    """A two-class classifier whose logits at every position are the vote of the token there.

    Token ids (batch, num_tokens) -> logits (batch, num_tokens, 2), (0, 5) where the token
    votes spam and (5, 0) elsewhere, so the class read at a position says which token sits
    there. It has GPTModel's `pos_emb`, so code reads its context from
    `pos_emb.weight.shape[0]`; ids outside the vocabulary or more tokens than the context
    fail the check with a message, where a GPTModel would raise an IndexError. Every call
    is logged in `calls` as (training, grad_enabled, input shape).
    """

    def __init__(self, spam_votes: list[bool], context_length: int):
        super().__init__()
        self.register_buffer("votes", torch.tensor(spam_votes, dtype=torch.long))
        self.pos_emb = nn.Embedding(context_length, 1)
        self.calls: list[tuple[bool, bool, tuple[int, ...]]] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) int64 -> (batch, num_tokens, 2) float logits."""
        self.calls.append((self.training, torch.is_grad_enabled(), tuple(idx.shape)))
        context_length = self.pos_emb.num_embeddings
        expect_token_id_batch(idx, len(self.votes))
        if idx.shape[1] > context_length:
            fail(f"the model was given {idx.shape[1]} tokens but its context holds {context_length}")
        return 5.0 * nn.functional.one_hot(self.votes[idx], 2).float()


class LlamaLayout(nn.Module):
    """A model laid out as chapter 8's Llama3Model: tok_emb, trf_blocks, final_norm and an out_head
    without bias, and no pos_emb. Token ids (batch, num_tokens) -> logits (batch, num_tokens, vocab_size).

    Chapter 6 comes before chapter 8, so its checks build this layout themselves.
    """

    def __init__(self, vocab_size: int = 37, emb_dim: int = 24, n_layers: int = 2):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.trf_blocks = nn.Sequential(
            *(nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU()) for _ in range(n_layers))
        )
        self.final_norm = nn.RMSNorm(emb_dim)
        self.out_head = nn.Linear(emb_dim, vocab_size, bias=False)

    def forward(self, in_idx: torch.Tensor) -> torch.Tensor:
        return self.out_head(self.final_norm(self.trf_blocks(self.tok_emb(in_idx))))
