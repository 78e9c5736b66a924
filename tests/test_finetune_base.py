"""The base model chapters 6, 7 and 9 fine-tune: GPT-2 124M when fetched, else SmolLM2-135M."""

from __future__ import annotations

import pytest

from llmcourse import data, finetune_base


def test_without_gpt2_weights_the_base_model_is_smollm2(monkeypatch):
    monkeypatch.setattr(finetune_base, "is_available", lambda name: name != finetune_base.GPT2)
    assert finetune_base.base_model_name() == finetune_base.SMOLLM2


def test_with_gpt2_weights_the_base_model_is_gpt2(monkeypatch):
    monkeypatch.setattr(finetune_base, "is_available", lambda name: name == finetune_base.GPT2)
    assert finetune_base.base_model_name() == finetune_base.GPT2


def test_an_unknown_base_model_names_the_choices():
    with pytest.raises(ValueError, match="gpt2-124m or smollm2-135m"):
        finetune_base.load_base_model("gpt3")


@pytest.mark.slow
def test_smollm2_loads_with_its_end_of_text_token_for_padding():
    if not data.is_available(finetune_base.SMOLLM2):
        pytest.skip("needs SmolLM2-135M-Instruct in the data folder (course data fetch smollm2-135m)")
    base = finetune_base.load_base_model(finetune_base.SMOLLM2, progress=False)
    assert base.tokenizer.decode([base.pad_token_id]) == "<|endoftext|>" == base.tokenizer.decode([base.eos_id])
    assert (base.context_length, base.emb_dim) == (8192, 576)
    assert base.model.out_head.in_features == base.emb_dim and not base.model.training
