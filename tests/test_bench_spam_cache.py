"""The spam benchmark's frozen-trunk cache: a classifier that looks up its frozen blocks' output computes
the logits and the AdamW update of the full classifier, on chapter 4's GPTModel and chapter 8's Llama3Model."""

from __future__ import annotations

import copy

import pytest
import torch

from autograder import paths
from benchmarks.bench_spam_finetune import record_last_block_inputs, skip_frozen_blocks

VOCAB_SIZE, NUM_TOKENS = 29, 6
GPT_CONFIG = {
    "vocab_size": VOCAB_SIZE,
    "context_length": 10,
    "emb_dim": 12,
    "n_heads": 3,
    "n_layers": 3,
    "drop_rate": 0.0,
    "qkv_bias": True,
}
LLAMA_CONFIG = {
    "vocab_size": VOCAB_SIZE,
    "context_length": 10,
    "emb_dim": 12,
    "n_heads": 3,
    "n_layers": 3,
    "hidden_dim": 20,
    "n_kv_groups": 1,
    "rope_base": 10_000.0,
    "rope_freq": None,
    "dtype": torch.float32,
}


@pytest.fixture(scope="module")
def ch06():
    if not paths.solution_notebook("ch06").exists():
        pytest.skip("needs solutions/ch06")
    import previous_chapters

    return previous_chapters.chapter("ch06")


def tiny_classifier(ch06, family: str) -> torch.nn.Module:
    """A random three-block GPTModel or Llama3Model turned into a two-class classifier by add_classification_head."""
    import previous_chapters

    torch.manual_seed(0)
    if family == "gpt":
        model = previous_chapters.GPTModel(GPT_CONFIG)
    else:
        model = previous_chapters.Llama3Model(LLAMA_CONFIG)
    return ch06.add_classification_head(model, num_classes=2)


def labelled_rows(seed: int, num_rows: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(ids (NUM_TOKENS,), label ()) pairs, as a SpamDataset yields them; the first row repeats as the last."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB_SIZE, (num_rows, NUM_TOKENS), generator=generator)
    ids[-1] = ids[0]
    labels = torch.randint(0, 2, (num_rows,), generator=generator)
    return list(zip(ids, labels))


def full_and_cached(ch06, family: str, datasets: list) -> tuple[torch.nn.Module, torch.nn.Module]:
    full = tiny_classifier(ch06, family)
    cached = copy.deepcopy(full)
    skip_frozen_blocks(cached, record_last_block_inputs(cached, datasets, batch_size=3))
    return full, cached


@pytest.mark.parametrize("family", ["gpt", "llama"])
def test_cached_classifier_gives_the_full_classifiers_logits_without_its_frozen_blocks(ch06, family):
    train, test = labelled_rows(1, 7), labelled_rows(2, 5)
    full, cached = full_and_cached(ch06, family, [train, test])
    assert not list(cached.trf_blocks[:-1].parameters())
    ids = torch.stack([row for row, _ in train[4:] + test[:2]])
    with torch.no_grad():
        torch.testing.assert_close(cached.eval()(ids), full.eval()(ids))


@pytest.mark.parametrize("family", ["gpt", "llama"])
def test_cached_classifier_takes_the_full_classifiers_training_step(ch06, family):
    train = labelled_rows(3, 8)
    full, cached = full_and_cached(ch06, family, [train])
    ids, labels = (torch.stack(column) for column in zip(*train))
    before = {name: param.detach().clone() for name, param in full.named_parameters() if param.requires_grad}
    for model in (full, cached):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        ch06.calc_loss_batch(ids, labels, model.train(), "cpu").backward()
        optimizer.step()
    updated = dict(cached.named_parameters())
    for name, param in full.named_parameters():
        if name in before:
            assert not torch.equal(param, before[name]), f"{name} did not change, so the step proves nothing"
            torch.testing.assert_close(updated[name], param)


def test_cached_classifier_refuses_rows_it_never_recorded(ch06):
    _, cached = full_and_cached(ch06, "llama", [labelled_rows(4, 3)])
    unseen = torch.stack([row for row, _ in labelled_rows(5, 2)])
    with pytest.raises(KeyError, match="never saw"):
        cached(unseen)


def test_cache_refuses_a_trunk_that_trains(ch06):
    model = tiny_classifier(ch06, "gpt")
    model.trf_blocks[0].att.W_query.weight.requires_grad = True
    with pytest.raises(ValueError, match="trf_blocks.0.att.W_query has trainable parameters"):
        record_last_block_inputs(model, [labelled_rows(6, 2)])
