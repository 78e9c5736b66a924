"""Hidden checks of chapter 3: the live reference against the submission on configurations
and inputs drawn from the seed. Messages say what differs, never the inputs or expected values."""
from __future__ import annotations

import random

import pytest
import torch

from autograder.checks.modules import expect_same_module
from autograder.checks.test_ch03 import (
    attention_weights,
    causal_attention,
    multihead_attention,
    multihead_wrapper,
    self_attention_v1,
    self_attention_v2,
)
from autograder.compare import expect_close, expect_tensor, fail

ATOL = 1e-5


def _expect_mask_moves(module, inputs: torch.Tensor, what: str) -> None:
    module = module.to("meta")
    try:
        out = module(inputs.to("meta"))
    except RuntimeError as exc:
        fail(f"after {what}.to(device) the forward pass fails ({str(exc).splitlines()[0]}); "
             "register the mask with self.register_buffer so that it moves with the module")
    expect_tensor(out, f"{what} output")


@attention_weights
def test_attention_weights_agree_with_reference(sub, ref, seed):
    """hidden: attention weights and context vectors of random inputs"""
    rng = torch.Generator().manual_seed(seed)
    for num_tokens, dim in ((1, 3), (8, 5), (13, 16)):
        inputs = torch.randn(num_tokens, dim, generator=rng)
        expect_close(sub.attention_weights(inputs.clone()), ref.attention_weights(inputs), "attention_weights on a hidden input", atol=ATOL)
        expect_close(sub.context_vectors(inputs.clone()), ref.context_vectors(inputs), "context_vectors on a hidden input", atol=ATOL)


@self_attention_v1
def test_self_attention_v1_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random size"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    config = {"d_in": rng.randint(2, 9), "d_out": rng.randint(2, 9)}
    expect_same_module(sub.SelfAttention_v1, ref.SelfAttention_v1, config, torch.randn(rng.randint(2, 10), config["d_in"]), "SelfAttention_v1")


@self_attention_v2
def test_self_attention_v2_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random size, with and without bias"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    for bias in (False, True):
        config = {"d_in": rng.randint(2, 9), "d_out": rng.randint(2, 9), "qkv_bias": bias}
        expect_same_module(sub.SelfAttention_v2, ref.SelfAttention_v2, config, torch.randn(rng.randint(2, 10), config["d_in"]), "SelfAttention_v2")


def _causal_config(rng: random.Random) -> dict:
    return {"d_in": rng.randint(2, 9), "d_out": rng.randint(2, 9), "context_length": rng.randint(4, 12),
            "dropout": rng.choice([0.0, 0.1, 0.5]), "qkv_bias": rng.random() < 0.5}


@causal_attention
def test_causal_attention_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random size and input length"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    config = _causal_config(rng)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, config["context_length"]), config["d_in"])
    expect_same_module(sub.CausalAttention, ref.CausalAttention, config, inputs, "CausalAttention")


@causal_attention
def test_causal_attention_mask_moves_with_the_module(sub, seed):
    """hidden: the mask is a registered buffer: the module works after .to(another device)"""
    config = _causal_config(random.Random(seed))
    _expect_mask_moves(sub.CausalAttention(**config), torch.randn(2, config["context_length"] - 1, config["d_in"]), "CausalAttention")


@multihead_wrapper
def test_wrapper_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random size and number of heads"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    config = {**_causal_config(rng), "num_heads": rng.randint(1, 4)}
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, config["context_length"]), config["d_in"])
    expect_same_module(sub.MultiHeadAttentionWrapper, ref.MultiHeadAttentionWrapper, config, inputs, "MultiHeadAttentionWrapper")


def _multihead_config(rng: random.Random) -> dict:
    num_heads = rng.randint(1, 4)
    return {**_causal_config(rng), "d_out": num_heads * rng.randint(1, 4), "num_heads": num_heads}


@multihead_attention
def test_multihead_attention_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random size, number of heads and input length"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    for _ in range(2):
        config = _multihead_config(rng)
        inputs = torch.randn(rng.randint(1, 3), rng.randint(1, config["context_length"]), config["d_in"])
        expect_same_module(sub.MultiHeadAttention, ref.MultiHeadAttention, config, inputs, "MultiHeadAttention")


@multihead_attention
def test_multihead_attention_mask_moves_with_the_module(sub, seed):
    """hidden: the mask is a registered buffer: the module works after .to(another device)"""
    config = _multihead_config(random.Random(seed))
    _expect_mask_moves(sub.MultiHeadAttention(**config), torch.randn(2, config["context_length"] - 1, config["d_in"]), "MultiHeadAttention")
