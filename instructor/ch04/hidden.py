"""Hidden checks of chapter 4: the live reference against the submission on configurations,
parameters and inputs drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import random
from operator import attrgetter

import torch

from autograder.checks.modules import load_parameters, module_check, parameter_state, randomised
from autograder.checks.test_ch04 import (
    GPT,
    dropout_placement_probe,
    expect_dropout_only_on_the_embeddings,
    expect_mode_left_to_the_caller,
    feed_forward,
    gelu,
    generate_text_simple,
    generation_modes_after,
    gpt_model,
    layer_norm,
    transformer_block,
)
from autograder.checks.toy_models import WindowLanguageModel
from autograder.compare import expect, expect_close, expect_equal_tensor
from autograder.split import split


def _config(rng: random.Random) -> dict:
    n_heads = rng.randint(1, 3)
    return {
        "vocab_size": rng.randint(10, 60),
        "context_length": rng.randint(4, 10),
        "emb_dim": n_heads * rng.randint(2, 5),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 3),
        "drop_rate": rng.choice([0.0, 0.1]),
        "qkv_bias": rng.random() < 0.5,
    }


def _layer_norm_draw(rng):
    width = rng.randint(2, 40)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, 5), width) * rng.choice([0.1, 1.0, 10.0])
    return [({"emb_dim": width}, inputs)]


def _feed_forward_draw(rng):
    cfg = _config(rng)
    return [({"cfg": cfg}, torch.randn(2, 3, cfg["emb_dim"]))]


def _transformer_block_draw(rng):
    cfg = _config(rng)
    return [({"cfg": cfg}, torch.randn(rng.randint(1, 3), rng.randint(1, cfg["context_length"]), cfg["emb_dim"]))]


def _gpt_model_draw(rng):
    cfg = _config(rng)
    return [
        ({"cfg": cfg}, torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, cfg["context_length"]))))
    ]


test_layer_norm_agrees_with_reference = layer_norm(
    module_check(
        "LayerNorm",
        attrgetter("LayerNorm"),
        _layer_norm_draw,
        "hidden: outputs and gradients for a random width and random scale and shift",
        random_weights=True,
    )
)
test_feed_forward_agrees_with_reference = feed_forward(
    module_check(
        "FeedForward", attrgetter("FeedForward"), _feed_forward_draw, "hidden: outputs and gradients for a random width"
    )
)
test_transformer_block_agrees_with_reference = transformer_block(
    module_check(
        "TransformerBlock",
        attrgetter("TransformerBlock"),
        _transformer_block_draw,
        "hidden: outputs and gradients for a random configuration and input length",
        random_weights=True,
    )
)
test_gpt_model_agrees_with_reference = gpt_model(
    module_check(
        "GPTModel",
        attrgetter("GPTModel"),
        _gpt_model_draw,
        "hidden: logits and gradients for a random configuration and input length",
        random_weights=True,
    )
)


def _gpt_dropout_case(ref, seed):
    """A random GPT in train(): its configuration, parameters, token ids and the torch seed of the step.

    Every seed exercises every placement: at least two blocks (so that dropout between blocks can
    show), a dropout rate from 0.25 to 0.6 but never 0.5 (so that nn.Dropout() without the rate shows),
    and at least 2 x 4 x 8 embedding values (so that some are dropped and some kept)."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_heads = rng.randint(2, 3)
    cfg = {
        "vocab_size": rng.randint(10, 60),
        "context_length": rng.randint(5, 10),
        "emb_dim": n_heads * rng.randint(4, 6),
        "n_heads": n_heads,
        "n_layers": rng.randint(2, 3),
        "drop_rate": rng.choice([0.25, 0.3, 0.4, 0.6]),
        "qkv_bias": rng.random() < 0.5,
    }
    inputs = torch.randint(0, cfg["vocab_size"], (rng.randint(2, 3), rng.randint(4, cfg["context_length"])))
    state = parameter_state(randomised(ref.GPTModel(cfg)))
    return {"config": cfg, "inputs": inputs, "state": state, "train_seed": rng.randint(0, 2**31 - 1)}


def _gpt_dropout_outputs(sub, case):
    model = load_parameters(sub.GPTModel(case["config"]), case["state"], GPT)
    return dropout_placement_probe(model, case["inputs"], case["train_seed"], case["config"]["n_layers"])


@gpt_model
@split(setup=_gpt_dropout_case, produce=_gpt_dropout_outputs)
def test_gpt_model_dropout_placement_agrees_with_reference(outputs, case, ref):
    """hidden: in train(), dropout only on the embeddings, for a random configuration and input"""
    reference = load_parameters(ref.GPTModel(case["config"]), case["state"], GPT).train()
    torch.manual_seed(case["train_seed"])
    with torch.no_grad():
        reference_logits = reference(case["inputs"])
    expect_dropout_only_on_the_embeddings(
        outputs, case["state"], case["inputs"], case["config"], reference_logits, f"{GPT} (hidden configuration)"
    )


def _gelu_case(seed):
    torch.manual_seed(seed)
    return {"x": torch.randn(4, 33) * 4}


def _gelu_and_gradient(module, x: torch.Tensor) -> dict:
    """GELU's output on `x` and the gradient of its sum (None where none flows back to `x`)."""
    x = x.clone().requires_grad_()
    out = module.GELU()(x)
    grad = None
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (grad,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    return {"out": out, "grad": grad}


def _gelu_outputs(sub, case):
    return _gelu_and_gradient(sub, case["x"])


@gelu
@split(setup=_gelu_case, produce=_gelu_outputs)
def test_gelu_agrees_with_reference(outputs, case, ref):
    """hidden: values and gradients on random inputs"""
    theirs = _gelu_and_gradient(ref, case["x"])
    expect_close(outputs["out"], theirs["out"].detach(), "GELU on a hidden input", atol=1e-5)
    expect(outputs["grad"] is not None, "no gradient flows back through GELU on a hidden input")
    expect_close(outputs["grad"], theirs["grad"], "the gradient of GELU on a hidden input", atol=1e-5)


def _generation_case(seed):
    """A random window model (its sizes and seed), prompts and number of steps."""
    rng = random.Random(seed)
    context_size, vocab_size = rng.randint(2, 6), rng.randint(5, 40)
    prompts = torch.randint(
        0,
        vocab_size,
        (rng.randint(1, 3), rng.randint(1, context_size + 3)),
        generator=torch.Generator().manual_seed(seed),
    )
    return {
        "vocab_size": vocab_size,
        "context_size": context_size,
        "model_seed": seed,
        "prompts": prompts,
        "steps": rng.randint(1, 9),
    }


def _greedy_tokens(module, case: dict):
    model = WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["model_seed"])
    return module.generate_text_simple(model, case["prompts"].clone(), case["steps"], case["context_size"])


def _generation_outputs(sub, case):
    modes = generation_modes_after(
        sub.generate_text_simple, {**case, "seed": case["model_seed"]}, min(case["steps"], 2)
    )
    return {"tokens": _greedy_tokens(sub, case), "modes": modes}


@generate_text_simple
@split(setup=_generation_case, produce=_generation_outputs)
def test_generate_text_simple_agrees_with_reference(outputs, case, ref):
    """hidden: greedy tokens from a random model, prompt and context size; the model's mode left as the caller set it"""
    expect_equal_tensor(
        outputs["tokens"], _greedy_tokens(ref, case), "generate_text_simple on a hidden model and prompt"
    )
    expect_mode_left_to_the_caller(outputs["modes"], "generate_text_simple (hidden model)")
