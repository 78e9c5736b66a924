"""Hidden checks of chapter 9: the live reference against the submission on sizes, ranks,
scalings and models drawn from the seed. Messages say what differs, never the inputs."""
from __future__ import annotations

import math
import random

import torch
from torch import nn

from autograder.checks.modules import load_parameters, parameter_state, randomised
from autograder.checks.test_ch09 import (
    finetune_losses,
    linear_layers,
    linear_with_lora,
    lora_finetune,
    lora_layer,
    merge_lora,
    no_grad,
    replace_linear_with_lora,
    tiny_classifier,
    wrap_linears,
)
from autograder.compare import expect, expect_close


def _gpt_config(rng: random.Random) -> dict:
    n_heads = rng.randint(1, 3)
    return {"vocab_size": rng.randint(10, 40), "context_length": rng.randint(6, 12), "emb_dim": n_heads * rng.randint(2, 5),
            "n_heads": n_heads, "n_layers": rng.randint(1, 3), "drop_rate": 0.0, "qkv_bias": rng.random() < 0.5}


def _llama_config(rng: random.Random) -> dict:
    n_kv_groups = rng.randint(1, 2)
    n_heads = n_kv_groups * rng.randint(1, 2)
    return {"vocab_size": rng.randint(10, 40), "context_length": rng.randint(6, 12), "emb_dim": n_heads * 2 * rng.randint(1, 3),
            "n_heads": n_heads, "n_layers": rng.randint(1, 2), "hidden_dim": rng.randint(4, 20), "n_kv_groups": n_kv_groups,
            "rope_base": 10_000.0, "rope_freq": None, "dtype": torch.float32}


def _model_maker(rng: random.Random):
    """(a function making a fresh random-sized GPTModel or Llama3Model, its vocabulary size)."""
    from previous_chapters import GPTModel, Llama3Model

    if rng.random() < 0.5:
        cfg = _gpt_config(rng)
        return (lambda: GPTModel(dict(cfg))), cfg["vocab_size"]
    cfg = _llama_config(rng)
    return (lambda: Llama3Model(dict(cfg))), cfg["vocab_size"]


def _scaling(rng: random.Random) -> tuple[int, float]:
    return rng.randint(1, 6), rng.choice([0.5, 2.0, 8.0, 16.0])


def _draw(seed: int):
    """(rng, a model maker, its vocabulary size, rank, alpha), all drawn from the seed; torch's generator seeded too."""
    rng = random.Random(seed)
    make, vocab_size = _model_maker(rng)
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    return rng, make, vocab_size, rank, alpha


@lora_layer
def test_lora_layer_agrees_with_reference(sub, ref, seed):
    """hidden: random sizes, rank and alpha; the same factors in both"""
    rng = random.Random(seed)
    in_dim, out_dim = rng.randint(2, 30), rng.randint(2, 30)
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    reference = randomised(ref.LoRALayer(in_dim, out_dim, rank, alpha))
    mine = load_parameters(sub.LoRALayer(in_dim, out_dim, rank, alpha), parameter_state(reference), "LoRALayer")
    x = torch.randn(rng.randint(1, 3), rng.randint(1, 5), in_dim)
    expect_close(no_grad(mine, x), no_grad(reference, x), "LoRALayer output on a hidden input", atol=1e-4)
    fresh = sub.LoRALayer(in_dim, out_dim, rank, alpha)
    expect(bool((fresh.B == 0).all()), "a fresh LoRALayer of hidden sizes has a non-zero B")
    expect(fresh.A.abs().max().item() <= (1 + 1e-6) / math.sqrt(rank),
           "a fresh LoRALayer of hidden sizes has entries of A beyond ±1/sqrt(rank)")


@linear_with_lora
def test_linear_with_lora_agrees_with_reference(sub, ref, seed):
    """hidden: random sizes, bias, rank and alpha; outputs and the gradients of A and B"""
    rng = random.Random(seed)
    in_dim, out_dim, bias = rng.randint(2, 30), rng.randint(2, 30), rng.random() < 0.5
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    linear = nn.Linear(in_dim, out_dim, bias=bias)
    reference = ref.LinearWithLoRA(linear, rank, alpha)
    randomised(reference.lora)
    copy = nn.Linear(in_dim, out_dim, bias=bias)
    copy.load_state_dict(linear.state_dict())
    mine = load_parameters(sub.LinearWithLoRA(copy, rank, alpha), parameter_state(reference), "LinearWithLoRA")
    x = torch.randn(rng.randint(1, 4), in_dim)
    weighting = torch.randn(x.shape[0], out_dim)
    outputs = []
    for module in (mine, reference):
        out = module(x)
        (out * weighting).sum().backward()
        outputs.append(out.detach())
    expect_close(outputs[0], outputs[1], "LinearWithLoRA output on a hidden input", atol=1e-4)
    for name in ("lora.A", "lora.B"):
        expect_close(mine.get_parameter(name).grad, reference.get_parameter(name).grad,
                     f"the gradient of LinearWithLoRA.{name} on a hidden input", atol=1e-4)
    expect({n for n, p in mine.named_parameters() if p.requires_grad} == {"lora.A", "lora.B"},
           "LinearWithLoRA of hidden sizes trains more or less than lora.A and lora.B")


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: param.requires_grad for name, param in model.named_parameters()}


@replace_linear_with_lora
def test_replacement_agrees_with_reference(sub, ref, seed):
    """hidden: a random GPTModel or Llama3Model, part of it frozen, a random rank and alpha"""
    rng, make, vocab_size, rank, alpha = _draw(seed)
    models = [randomised(make()), make()]
    models[1].load_state_dict(models[0].state_dict())
    frozen = rng.choice(["tok_emb", "trf_blocks", "final_norm"])
    for model, function in zip(models, (sub.replace_linear_with_lora, ref.replace_linear_with_lora)):
        for param in model.get_submodule(frozen).parameters():
            param.requires_grad = False
        function(model, rank, alpha)
    mine, reference = models
    expect(_flags(mine) == _flags(reference), "after replace_linear_with_lora on a hidden model, the parameter names or "
           "their requires_grad differ from the reference's")
    randomised(reference)
    load_parameters(mine, parameter_state(reference), "the hidden model after replace_linear_with_lora")
    ids = torch.randint(0, vocab_size, (2, 5))
    expect_close(no_grad(mine.eval(), ids), no_grad(reference.eval(), ids),
                 "the logits of a hidden model after replace_linear_with_lora", atol=1e-4)


@merge_lora
def test_merge_agrees_with_reference(sub, ref, seed):
    """hidden: a random model with LoRA on a random part of its linear layers, all parameters random"""
    rng, make, vocab_size, rank, alpha = _draw(seed)
    names = {name for name in linear_layers(make()) if rng.random() < 0.6}
    reference = randomised(wrap_linears(ref.LinearWithLoRA, make(), rank, alpha, names))
    mine = wrap_linears(sub.LinearWithLoRA, make(), rank, alpha, names)
    load_parameters(mine, parameter_state(reference), "the hidden model with LoRA")
    merged, expected = sub.merge_lora(mine), ref.merge_lora(reference)
    expect(merged is mine, "merge_lora should return the model it merged in place")
    expected_state = expected.state_dict()
    state = merged.state_dict()
    expect(set(state) == set(expected_state), "the merged hidden model's state dict names differ from the reference's")
    for name, tensor in expected_state.items():
        expect_close(state[name], tensor, f"{name} of the merged hidden model", atol=1e-5)
    ids = torch.randint(0, vocab_size, (2, 5))
    expect_close(no_grad(merged.eval(), ids), no_grad(expected.eval(), ids), "the logits of the merged hidden model",
                 atol=1e-4)


@lora_finetune
def test_lora_classifier_agrees_with_reference(sub, ref, seed):
    """hidden: a random classifier from chapter 6, a random rank and alpha, and AdamW steps on a random batch"""
    _, make, vocab_size, rank, alpha = _draw(seed)
    reference = ref.prepare_lora_model(tiny_classifier(make, seed), rank, alpha)
    mine = sub.prepare_lora_model(tiny_classifier(make, seed), rank, alpha)
    expect(_flags(mine) == _flags(reference), "after prepare_lora_model on a hidden classifier, the parameter names or "
           "their requires_grad differ from the reference's")
    expected_count = ref.count_trainable_parameters(reference)
    count = sub.count_trainable_parameters(mine)
    expect(count == expected_count, f"count_trainable_parameters of a hidden LoRA classifier gives {count:,}; expected "
           f"{expected_count:,}")
    randomised(reference, std=0.1)
    load_parameters(mine, parameter_state(reference), "the hidden LoRA classifier")
    ids, labels = torch.randint(0, vocab_size, (4, 5)), torch.randint(0, 2, (4,))
    losses = [finetune_losses(model, ids, labels) for model in (mine, reference)]
    expect_close(torch.tensor(losses[0]), torch.tensor(losses[1]), "the losses of AdamW steps on a hidden LoRA "
                 "classifier", atol=1e-4)
