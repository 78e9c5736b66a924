"""Hidden checks of chapter 3: the live reference against the submission on configurations
and inputs drawn from the seed. Messages say what differs, never the inputs or expected values."""

from __future__ import annotations

import random
from operator import attrgetter

import torch

from autograder.checks.modules import module_check
from autograder.checks.test_ch03 import (
    attention_weights,
    causal_attention,
    multihead_attention,
    multihead_wrapper,
    self_attention_v1,
    self_attention_v2,
)
from autograder.compare import expect, expect_close, fail
from autograder.split import split

ATOL = 1e-5


def _attention_case(seed):
    rng = torch.Generator().manual_seed(seed)
    return {"inputs": [torch.randn(num_tokens, dim, generator=rng) for num_tokens, dim in ((1, 3), (8, 5), (13, 16))]}


def _attention_outputs(sub, case):
    return {
        "weights": [sub.attention_weights(x) for x in case["inputs"]],
        "context": [sub.context_vectors(x) for x in case["inputs"]],
    }


@attention_weights
@split(setup=_attention_case, produce=_attention_outputs)
def test_attention_weights_agree_with_reference(outputs, case, ref):
    """hidden: attention weights and context vectors of random inputs"""
    for x, weights, context in zip(case["inputs"], outputs["weights"], outputs["context"]):
        expect_close(weights, ref.attention_weights(x), "attention_weights on a hidden input", atol=ATOL)
        expect_close(context, ref.context_vectors(x), "context_vectors on a hidden input", atol=ATOL)


def _v1_draw(rng):
    config = {"d_in": rng.randint(2, 9), "d_out": rng.randint(2, 9)}
    return [(config, torch.randn(rng.randint(2, 10), config["d_in"]))]


def _v2_draw(rng):
    drawn = []
    for bias in (False, True):
        config = {"d_in": rng.randint(2, 9), "d_out": rng.randint(2, 9), "qkv_bias": bias}
        drawn.append((config, torch.randn(rng.randint(2, 10), config["d_in"])))
    return drawn


def _causal_config(rng: random.Random, qkv_bias: bool) -> dict:
    return {
        "d_in": rng.randint(2, 9),
        "d_out": rng.randint(2, 9),
        "context_length": rng.randint(4, 12),
        "dropout": rng.choice([0.0, 0.1, 0.5]),
        "qkv_bias": qkv_bias,
    }


def _batches_for(configs: list[dict], rng: random.Random) -> list[tuple[dict, torch.Tensor]]:
    """One batch per config: the first fills the context, the others are shorter (2 tokens or more)."""
    drawn = []
    for i, config in enumerate(configs):
        num_tokens = config["context_length"] if i == 0 else rng.randint(2, config["context_length"] - 1)
        drawn.append((config, torch.randn(rng.randint(1, 3), num_tokens, config["d_in"])))
    return drawn


def _causal_draw(rng):
    return _batches_for([_causal_config(rng, bias) for bias in (False, True)], rng)


def _wrapper_draw(rng):
    return _batches_for([{**_causal_config(rng, bias), "num_heads": rng.randint(1, 4)} for bias in (False, True)], rng)


def _multihead_config(rng: random.Random, qkv_bias: bool) -> dict:
    num_heads = rng.randint(2, 4)
    return {**_causal_config(rng, qkv_bias), "d_out": num_heads * rng.randint(1, 4), "num_heads": num_heads}


def _multihead_draw(rng):
    return _batches_for([_multihead_config(rng, bias) for bias in (False, True)], rng)


test_self_attention_v1_agrees_with_reference = self_attention_v1(
    module_check(
        "SelfAttention_v1",
        attrgetter("SelfAttention_v1"),
        _v1_draw,
        "hidden: outputs and gradients for a random size",
        atol=ATOL,
    )
)
test_self_attention_v2_agrees_with_reference = self_attention_v2(
    module_check(
        "SelfAttention_v2",
        attrgetter("SelfAttention_v2"),
        _v2_draw,
        "hidden: outputs and gradients for a random size, with and without bias",
        atol=ATOL,
    )
)
test_causal_attention_agrees_with_reference = causal_attention(
    module_check(
        "CausalAttention",
        attrgetter("CausalAttention"),
        _causal_draw,
        "hidden: outputs and gradients for a random size and input length",
        atol=ATOL,
    )
)
test_wrapper_agrees_with_reference = multihead_wrapper(
    module_check(
        "MultiHeadAttentionWrapper",
        attrgetter("MultiHeadAttentionWrapper"),
        _wrapper_draw,
        "hidden: outputs and gradients for a random size and number of heads",
        atol=ATOL,
    )
)
test_multihead_attention_agrees_with_reference = multihead_attention(
    module_check(
        "MultiHeadAttention",
        attrgetter("MultiHeadAttention"),
        _multihead_draw,
        "hidden: outputs and gradients for a random size, number of heads and input length",
        atol=ATOL,
    )
)


def _mask_case(draw_config):
    def setup(seed):
        config = draw_config(random.Random(seed), qkv_bias=True)
        return {"config": config, "inputs": torch.randn(2, config["context_length"] - 1, config["d_in"])}

    return setup


def _mask_outputs(class_name: str):
    def produce(sub, case):
        """The output shape after moving the module (and the input) to the meta device, or the error."""
        module = getattr(sub, class_name)(**case["config"]).to("meta")
        try:
            out = module(case["inputs"].to("meta"))
        except RuntimeError as exc:
            return {"error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        return {"shape": list(out.shape) if isinstance(out, torch.Tensor) else None}

    return produce


def _expect_mask_moves(outputs: dict, what: str) -> None:
    if "error" in outputs:
        fail(
            f"after {what}.to(device) the forward pass fails ({outputs['error']}); "
            "register the mask with self.register_buffer so that it moves with the module"
        )
    expect(outputs["shape"] is not None, f"{what} output should be a tensor")


@causal_attention
@split(setup=_mask_case(_causal_config), produce=_mask_outputs("CausalAttention"))
def test_causal_attention_mask_moves_with_the_module(outputs):
    """hidden: the mask is a registered buffer: the module works after .to(another device)"""
    _expect_mask_moves(outputs, "CausalAttention")


@multihead_attention
@split(setup=_mask_case(_multihead_config), produce=_mask_outputs("MultiHeadAttention"))
def test_multihead_attention_mask_moves_with_the_module(outputs):
    """hidden: the mask is a registered buffer: the module works after .to(another device)"""
    _expect_mask_moves(outputs, "MultiHeadAttention")
