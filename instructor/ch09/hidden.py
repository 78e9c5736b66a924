"""Hidden checks of chapter 9: the live reference against the submission on sizes, ranks,
scalings and models drawn from the seed. Messages say what differs, never the inputs.

The models are chapter 4's GPTModel and chapter 8's Llama3Model, described in a case by their
family and configuration (`_model_spec`) and built afresh by each step (`_model`)."""

from __future__ import annotations

import functools
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
from autograder.compare import expect, expect_close, expect_number, expect_tensor, expect_type
from autograder.split import split


def _gpt_config(rng: random.Random) -> dict:
    n_heads = rng.randint(1, 3)
    return {
        "vocab_size": rng.randint(10, 40),
        "context_length": rng.randint(6, 12),
        "emb_dim": n_heads * rng.randint(2, 5),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 3),
        "drop_rate": 0.0,
        "qkv_bias": rng.random() < 0.5,
    }


def _llama_config(rng: random.Random) -> dict:
    """A Llama3Model configuration without its dtype (not data; `_model` adds float32)."""
    n_kv_groups = rng.randint(1, 2)
    n_heads = n_kv_groups * rng.randint(1, 2)
    return {
        "vocab_size": rng.randint(10, 40),
        "context_length": rng.randint(6, 12),
        "emb_dim": n_heads * 2 * rng.randint(1, 3),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 2),
        "hidden_dim": rng.randint(4, 20),
        "n_kv_groups": n_kv_groups,
        "rope_base": 10_000.0,
        "rope_freq": None,
    }


def _model_spec(rng: random.Random) -> dict:
    """A random-sized GPTModel or Llama3Model, as data: its family and configuration."""
    if rng.random() < 0.5:
        return {"family": "GPTModel", "config": _gpt_config(rng)}
    return {"family": "Llama3Model", "config": _llama_config(rng)}


def _model(spec: dict) -> nn.Module:
    """A fresh model as `spec` describes it."""
    from previous_chapters import GPTModel, Llama3Model

    if spec["family"] == "GPTModel":
        return GPTModel(dict(spec["config"]))
    return Llama3Model({**spec["config"], "dtype": torch.float32})


def _scaling(rng: random.Random) -> tuple[int, float]:
    return rng.randint(1, 6), rng.choice([0.5, 2.0, 8.0, 16.0])


def _draw(seed: int):
    """(rng, a model spec, rank, alpha), all drawn from the seed; torch's generator seeded too."""
    rng = random.Random(seed)
    spec = _model_spec(rng)
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    return rng, spec, rank, alpha


def _tokens(spec: dict, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, spec["config"]["vocab_size"], shape)


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: param.requires_grad for name, param in model.named_parameters()}


def _loadable(flags: dict[str, bool], state: dict[str, torch.Tensor]) -> bool:
    """Whether a model with these parameter names can take the case's parameters; where it cannot,
    compare reports the names through the flags, without naming the hidden model's parameters."""
    return set(flags) == set(state)


# ---------------------------------------------------------------- LoRALayer


def _lora_layer_case(ref, seed):
    rng = random.Random(seed)
    in_dim, out_dim = rng.randint(2, 30), rng.randint(2, 30)
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    reference = randomised(ref.LoRALayer(in_dim, out_dim, rank, alpha))
    return {
        "sizes": [in_dim, out_dim, rank, alpha],
        "state": parameter_state(reference),
        "x": torch.randn(rng.randint(1, 3), rng.randint(1, 5), in_dim),
        "seed": seed,
    }


def _lora_layer_outputs(sub, case):
    """The output with the case's factors, and the factors of a fresh layer (drawn from the case's seed)."""
    mine = load_parameters(sub.LoRALayer(*case["sizes"]), case["state"], "LoRALayer")
    out = no_grad(mine, case["x"])
    torch.manual_seed(case["seed"])
    fresh = sub.LoRALayer(*case["sizes"])
    return {"out": out, "fresh_A": fresh.A, "fresh_B": fresh.B}


@lora_layer
@split(setup=_lora_layer_case, produce=_lora_layer_outputs)
def test_lora_layer_agrees_with_reference(outputs, case, ref):
    """hidden: random sizes, rank and alpha; the same factors in both"""
    reference = load_parameters(ref.LoRALayer(*case["sizes"]), case["state"], "LoRALayer")
    expect_close(outputs["out"], no_grad(reference, case["x"]), "LoRALayer output on a hidden input", atol=1e-4)
    fresh_A, fresh_B = outputs["fresh_A"], outputs["fresh_B"]
    expect_tensor(fresh_B, "B of a fresh LoRALayer of hidden sizes")
    expect(bool((fresh_B == 0).all()), "a fresh LoRALayer of hidden sizes has a non-zero B")
    expect_tensor(fresh_A, "A of a fresh LoRALayer of hidden sizes")
    rank = case["sizes"][2]
    expect(
        fresh_A.abs().max().item() <= (1 + 1e-6) / math.sqrt(rank),
        "a fresh LoRALayer of hidden sizes has entries of A beyond ±1/sqrt(rank)",
    )


# ---------------------------------------------------------------- LinearWithLoRA

_FACTORS = ("lora.A", "lora.B")


def _linear(case: dict) -> nn.Linear:
    """The case's pretrained layer: a fresh nn.Linear holding its weight (and bias), frozen, as the
    chapter's model-level sequence leaves a layer before it is wrapped."""
    in_dim, out_dim, bias = case["linear_sizes"]
    linear = nn.Linear(in_dim, out_dim, bias=bias)
    linear.load_state_dict(case["linear"])
    return linear.requires_grad_(False)


def _linear_with_lora_case(ref, seed):
    rng = random.Random(seed)
    in_dim, out_dim, bias = rng.randint(2, 30), rng.randint(2, 30), rng.random() < 0.5
    rank, alpha = _scaling(rng)
    torch.manual_seed(seed)
    linear = nn.Linear(in_dim, out_dim, bias=bias)
    pretrained = {name: tensor.clone() for name, tensor in linear.state_dict().items()}
    reference = ref.LinearWithLoRA(linear, rank, alpha)
    randomised(reference.lora)
    x = torch.randn(rng.randint(1, 4), in_dim)
    return {
        "linear_sizes": [in_dim, out_dim, bias],
        "linear": pretrained,
        "scaling": [rank, alpha],
        "state": parameter_state(reference),
        "x": x,
        "weighting": torch.randn(x.shape[0], out_dim),
    }


def _linear_with_lora_run(LinearWithLoRA, case: dict, what: str) -> tuple[nn.Module, object]:
    """LinearWithLoRA around the case's layer, with the case's factors; its output on the case's
    input, backpropagated with the case's weighting where it can be."""
    module = load_parameters(LinearWithLoRA(_linear(case), *case["scaling"]), case["state"], what)
    out = module(case["x"])
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (out * case["weighting"]).sum().backward()
    return module, out


def _linear_with_lora_outputs(sub, case):
    mine, out = _linear_with_lora_run(sub.LinearWithLoRA, case, "LinearWithLoRA")
    return {
        "out": out,
        "grads": {name: mine.get_parameter(name).grad for name in _FACTORS},
        "trainable": sorted(name for name, param in mine.named_parameters() if param.requires_grad),
    }


@linear_with_lora
@split(setup=_linear_with_lora_case, produce=_linear_with_lora_outputs)
def test_linear_with_lora_agrees_with_reference(outputs, case, ref):
    """hidden: random sizes, bias, rank and alpha; outputs and the gradients of A and B"""
    reference, out = _linear_with_lora_run(ref.LinearWithLoRA, case, "LinearWithLoRA")
    expect_close(outputs["out"], out.detach(), "LinearWithLoRA output on a hidden input", atol=1e-4)
    for name in _FACTORS:
        grad = outputs["grads"][name]
        expect(grad is not None, f"no gradient reaches LinearWithLoRA.{name} on a hidden input")
        expect_close(
            grad,
            reference.get_parameter(name).grad,
            f"the gradient of LinearWithLoRA.{name} on a hidden input",
            atol=1e-4,
        )
    expect(
        outputs["trainable"] == list(_FACTORS),
        "LinearWithLoRA of hidden sizes trains more or less than lora.A and lora.B",
    )


# ---------------------------------------------------------------- replace_linear_with_lora


def _frozen_part(case: dict) -> nn.Module:
    """A fresh model of the case, its `frozen` part frozen."""
    model = _model(case["model"])
    for param in model.get_submodule(case["frozen"]).parameters():
        param.requires_grad = False
    return model


def _replaced(replace_linear_with_lora, case: dict) -> nn.Module:
    """`_frozen_part(case)` after `replace_linear_with_lora`."""
    model = _frozen_part(case)
    replace_linear_with_lora(model, *case["scaling"])
    return model


def _replacement_case(ref, seed):
    rng, spec, rank, alpha = _draw(seed)
    case = {"model": spec, "scaling": [rank, alpha], "frozen": rng.choice(["tok_emb", "trf_blocks", "final_norm"])}
    reference = randomised(_replaced(ref.replace_linear_with_lora, case))
    return {**case, "state": parameter_state(reference), "ids": _tokens(spec, (2, 5))}


def _replacement_outputs(sub, case):
    """The parameter flags after the replacement; the logits with the case's parameters where they fit."""
    mine = _replaced(sub.replace_linear_with_lora, case)
    flags = _flags(mine)
    if not _loadable(flags, case["state"]):
        return {"flags": flags, "logits": None}
    load_parameters(mine, case["state"], "the hidden model after replace_linear_with_lora")
    return {"flags": flags, "logits": no_grad(mine.eval(), case["ids"])}


@replace_linear_with_lora
@split(setup=_replacement_case, produce=_replacement_outputs)
def test_replacement_agrees_with_reference(outputs, case, ref):
    """hidden: a random GPTModel or Llama3Model, part of it frozen, a random rank and alpha"""
    reference = _replaced(ref.replace_linear_with_lora, case)
    expected = _flags(reference)
    expect(
        isinstance(outputs["flags"], dict) and set(outputs["flags"]) == set(expected),
        "after replace_linear_with_lora on a hidden model, the parameter names differ from the reference's",
    )
    before = _flags(_frozen_part(case))
    for name, flag in expected.items():
        got = outputs["flags"][name]
        owner, _, leaf = name.rpartition(".")
        if owner.endswith(".linear") or owner == "linear":  # a wrapped layer: frozen, or as the caller left it
            allowed = {False, before[f"{owner.removesuffix('linear').rstrip('.')}.{leaf}".lstrip(".")]}
        else:
            allowed = {flag}
        expect(
            got in allowed,
            f"after replace_linear_with_lora on a hidden model, {name} has requires_grad={got}: the LoRA "
            "factors train, the other parameters keep theirs (a wrapped layer may be frozen)",
        )
    load_parameters(reference, case["state"], "the reference after replace_linear_with_lora")
    expect_close(
        outputs["logits"],
        no_grad(reference.eval(), case["ids"]),
        "the logits of a hidden model after replace_linear_with_lora",
        atol=1e-4,
    )


# ---------------------------------------------------------------- merge_lora


def _wrapped(LinearWithLoRA, case: dict) -> nn.Module:
    """A fresh model of the case with the case's linear layers wrapped in LinearWithLoRA."""
    return wrap_linears(LinearWithLoRA, _model(case["model"]), *case["scaling"], set(case["names"]))


def _merge_case(ref, seed):
    rng, spec, rank, alpha = _draw(seed)
    names = sorted(name for name in linear_layers(_model(spec)) if rng.random() < 0.6)
    case = {"model": spec, "scaling": [rank, alpha], "names": names}
    reference = randomised(_wrapped(ref.LinearWithLoRA, case))
    return {**case, "state": parameter_state(reference), "ids": _tokens(spec, (2, 5))}


def _merge_outputs(sub, case):
    """Whether merge_lora returns the model it was given; that model's state dict and logits after it."""
    mine = load_parameters(_wrapped(sub.LinearWithLoRA, case), case["state"], "the hidden model with LoRA")
    returned = sub.merge_lora(mine)
    return {
        "returns_the_model": returned is mine,
        "state": mine.state_dict(),
        "logits": no_grad(mine.eval(), case["ids"]),
    }


@merge_lora
@split(setup=_merge_case, produce=_merge_outputs)
def test_merge_agrees_with_reference(outputs, case, ref):
    """hidden: a random model with LoRA on a random part of its linear layers, all parameters random"""
    reference = load_parameters(_wrapped(ref.LinearWithLoRA, case), case["state"], "the hidden model with LoRA")
    expected = ref.merge_lora(reference)
    expect(outputs["returns_the_model"] is True, "merge_lora should return the model it merged in place")
    expected_state, state = expected.state_dict(), outputs["state"]
    expect_type(state, dict, "the merged hidden model's state dict")
    expect(set(state) == set(expected_state), "the merged hidden model's state dict names differ from the reference's")
    for name, tensor in expected_state.items():
        expect_close(state[name], tensor, f"{name} of the merged hidden model", atol=1e-5)
    expect_close(
        outputs["logits"], no_grad(expected.eval(), case["ids"]), "the logits of the merged hidden model", atol=1e-4
    )


# ---------------------------------------------------------------- prepare_lora_model, count_trainable_parameters

_LOSSES = "the losses of AdamW steps on a hidden LoRA classifier"


def _lora_classifier(prepare_lora_model, case: dict) -> nn.Module:
    """Chapter 6's classifier on a fresh model of the case, after `prepare_lora_model`."""
    return prepare_lora_model(tiny_classifier(functools.partial(_model, case["model"]), case["seed"]), *case["scaling"])


def _finetuned_losses(model: nn.Module, case: dict, what: str) -> list[float]:
    load_parameters(model, case["state"], what)
    return finetune_losses(model, case["ids"], case["labels"])


def _classifier_case(ref, seed):
    _, spec, rank, alpha = _draw(seed)
    case = {"model": spec, "scaling": [rank, alpha], "seed": seed}
    reference = randomised(_lora_classifier(ref.prepare_lora_model, case), std=0.1)
    return {
        **case,
        "state": parameter_state(reference),
        "ids": _tokens(spec, (4, 5)),
        "labels": torch.randint(0, 2, (4,)),
    }


def _classifier_outputs(sub, case):
    """The parameter flags and trainable count after prepare_lora_model; the losses of AdamW steps from
    the case's parameters where they fit and something trains (an optimizer needs parameters)."""
    mine = _lora_classifier(sub.prepare_lora_model, case)
    flags = _flags(mine)
    count = sub.count_trainable_parameters(mine)
    trains = _loadable(flags, case["state"]) and any(flags.values())
    return {
        "flags": flags,
        "count": count,
        "losses": _finetuned_losses(mine, case, "the hidden LoRA classifier") if trains else None,
    }


@lora_finetune
@split(setup=_classifier_case, produce=_classifier_outputs)
def test_lora_classifier_agrees_with_reference(outputs, case, ref):
    """hidden: a random classifier from chapter 6, a random rank and alpha, and AdamW steps on a random batch"""
    reference = _lora_classifier(ref.prepare_lora_model, case)
    expect(
        outputs["flags"] == _flags(reference),
        "after prepare_lora_model on a hidden classifier, the parameter names "
        "or their requires_grad differ from the reference's",
    )
    expected_count = ref.count_trainable_parameters(reference)
    count = expect_number(outputs["count"], "count_trainable_parameters of a hidden LoRA classifier")
    expect(
        count == expected_count,
        f"count_trainable_parameters of a hidden LoRA classifier gives {count:,.15g}; expected {expected_count:,}",
    )
    losses = outputs["losses"]
    expect_type(losses, list, _LOSSES)
    expected_losses = _finetuned_losses(reference, case, "the reference LoRA classifier")
    expect_close(
        torch.tensor([expect_number(loss, _LOSSES) for loss in losses]),
        torch.tensor(expected_losses),
        _LOSSES,
        atol=1e-4,
    )
