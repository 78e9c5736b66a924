"""Hidden checks of chapter 4: the live reference against the submission on configurations,
parameters and inputs drawn from the seed. Messages say what differs, never the inputs."""
from __future__ import annotations

import random

import torch

from autograder.checks.modules import Randomised, expect_same_module
from autograder.checks.test_ch04 import (
    feed_forward,
    gelu,
    generate_text_simple,
    gpt_model,
    layer_norm,
    transformer_block,
)
from autograder.checks.toy_models import WindowLanguageModel
from autograder.compare import expect_close, expect_equal_tensor


def _config(rng: random.Random) -> dict:
    n_heads = rng.randint(1, 3)
    return {"vocab_size": rng.randint(10, 60), "context_length": rng.randint(4, 10), "emb_dim": n_heads * rng.randint(2, 5),
            "n_heads": n_heads, "n_layers": rng.randint(1, 3), "drop_rate": rng.choice([0.0, 0.1]), "qkv_bias": rng.random() < 0.5}


@layer_norm
def test_layer_norm_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random width and random scale and shift"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    width = rng.randint(2, 40)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, 5), width) * rng.choice([0.1, 1.0, 10.0])
    expect_same_module(sub.LayerNorm, Randomised(ref.LayerNorm), {"emb_dim": width}, inputs, "LayerNorm")


@gelu
def test_gelu_agrees_with_reference(sub, ref, seed):
    """hidden: values and gradients on random inputs"""
    torch.manual_seed(seed)
    x = (torch.randn(4, 33) * 4).requires_grad_()
    mine, theirs = sub.GELU()(x), ref.GELU()(x)
    expect_close(mine, theirs.detach(), "GELU on a hidden input", atol=1e-5)
    (grad_mine,) = torch.autograd.grad(mine.sum(), x)
    (grad_ref,) = torch.autograd.grad(theirs.sum(), x)
    expect_close(grad_mine, grad_ref, "the gradient of GELU on a hidden input", atol=1e-5)


@feed_forward
def test_feed_forward_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random width"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    expect_same_module(sub.FeedForward, ref.FeedForward, {"cfg": cfg}, torch.randn(2, 3, cfg["emb_dim"]), "FeedForward")


@transformer_block
def test_transformer_block_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random configuration and input length"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, cfg["context_length"]), cfg["emb_dim"])
    expect_same_module(sub.TransformerBlock, Randomised(ref.TransformerBlock), {"cfg": cfg}, inputs, "TransformerBlock")


@gpt_model
def test_gpt_model_agrees_with_reference(sub, ref, seed):
    """hidden: logits and gradients for a random configuration and input length"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    inputs = torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, cfg["context_length"])))
    expect_same_module(sub.GPTModel, Randomised(ref.GPTModel), {"cfg": cfg}, inputs, "GPTModel")


@generate_text_simple
def test_generate_text_simple_agrees_with_reference(sub, ref, seed):
    """hidden: greedy tokens from a random model, prompt and context size"""
    rng = random.Random(seed)
    context_size, vocab_size = rng.randint(2, 6), rng.randint(5, 40)
    model = WindowLanguageModel(vocab_size, context_size, seed=seed)
    prompts = torch.randint(0, vocab_size, (rng.randint(1, 3), rng.randint(1, context_size + 3)),
                            generator=torch.Generator().manual_seed(seed))
    steps = rng.randint(1, 9)
    expected = ref.generate_text_simple(model, prompts.clone(), steps, context_size)
    expect_equal_tensor(sub.generate_text_simple(model, prompts.clone(), steps, context_size), expected,
                        "generate_text_simple on a hidden model and prompt")
