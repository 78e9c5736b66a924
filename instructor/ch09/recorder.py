"""Chapter 9 fixtures: the reference's trainable counts and a short LoRA fine-tuning run of chapter 6's classifier."""

from __future__ import annotations

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch09 import (
    ALPHA,
    MODELS,
    RANK,
    finetune_losses,
    gpt_model,
    tiny_classifier,
    tokens,
)


def _trainable_count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _replace_count(ref, make_model) -> int:
    model = make_model()
    for param in model.parameters():
        param.requires_grad = False
    ref.replace_linear_with_lora(model, RANK, ALPHA)
    return _trainable_count(model)


def _finetune_run(ref) -> dict:
    """A LoRA classifier with random (trained-looking) A and B, a batch, and the losses of AdamW steps on it."""
    model = ref.prepare_lora_model(tiny_classifier(gpt_model, seed=22), RANK, ALPHA)
    generator = torch.Generator().manual_seed(23)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(".lora.B"):
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    state = parameter_state(model)
    ids, labels = tokens(24, shape=(4, 6)), torch.tensor([0, 1, 1, 0])
    return {"state": state, "tokens": ids, "labels": labels, "losses": finetune_losses(model, ids, labels)}


def record(ref) -> dict:
    classifiers = {
        name: _trainable_count(ref.prepare_lora_model(tiny_classifier(make, seed=19), RANK, ALPHA))
        for name, make in MODELS.items()
    }
    return {
        "replace": {name: _replace_count(ref, make) for name, make in MODELS.items()},
        "classifier": {**{name: {"count": count} for name, count in classifiers.items()}, "run": _finetune_run(ref)},
    }
