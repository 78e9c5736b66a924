"""Chapter 7's reference batching against losses computed one example at a time.

On the real instruction data, tokenized with tiktoken's GPT-2 encoding, a small
causal GPTModel's loss over a padded and masked batch (cross_entropy skipping
ignore_index) must equal the loss of every example computed alone, without any
padding: every token predicting the next and the last predicting the end-of-text
token; with the prompt masked, the loss over the response tokens only.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from autograder import paths
from llmcourse import data

EOS = 50256
EXAMPLES = 12


@pytest.fixture(scope="module")
def ch07():
    if not paths.solution_notebook("ch07").exists():
        pytest.skip("needs solutions/ch07")
    import previous_chapters

    return previous_chapters.chapter("ch07")


@pytest.fixture(scope="module")
def entries():
    if not data.is_available("instruction-data.json"):
        pytest.skip("needs instruction-data.json (course data fetch instruction-data.json, or ../shared/data)")
    with open(data.data_path("instruction-data.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def gpt2():
    if not data.is_available("gpt2-bpe"):
        pytest.skip("needs the GPT-2 tokenizer files (course data fetch gpt2-bpe, or ../shared/data)")
    return data.gpt2_encoding()


@pytest.fixture(scope="module")
def model():
    from previous_chapters import GPTModel

    torch.manual_seed(0)
    cfg = {
        "vocab_size": 50257,
        "context_length": 256,
        "emb_dim": 16,
        "n_heads": 2,
        "n_layers": 1,
        "drop_rate": 0.0,
        "qkv_bias": False,
    }
    return GPTModel(cfg).eval()


def _loss_alone(model, token_ids: list[int], start: int = 0, limit: int | None = None) -> tuple[torch.Tensor, int]:
    """Summed loss of one unpadded example: position t predicts token t + 1, the last one the end-of-text token;
    only target positions start .. limit - 1 count."""
    targets = torch.tensor(token_ids[1:] + [EOS])[:limit]
    with torch.no_grad():
        logits = model(torch.tensor([token_ids[:limit]]))[0]
    return F.cross_entropy(logits[start:], targets[start:], reduction="sum"), len(targets[start:])


def _batch_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(inputs).flatten(0, 1), targets.flatten(), ignore_index=-100)


def _mean(pairs: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return sum(loss for loss, _ in pairs) / sum(count for _, count in pairs)


@pytest.mark.parametrize("allowed_max_length", [None, 48])
def test_padded_batch_loss_equals_each_example_alone(ch07, entries, gpt2, model, allowed_max_length):
    dataset = ch07.InstructionDataset(entries[:EXAMPLES], gpt2)
    batch = [dataset[i] for i in range(len(dataset))]
    assert len({len(ids) for ids in batch}) > 1, "the examples should differ in length"
    inputs, targets = ch07.custom_collate_fn(batch, allowed_max_length=allowed_max_length)
    expected = _mean([_loss_alone(model, ids, limit=allowed_max_length) for ids in batch])
    torch.testing.assert_close(_batch_loss(model, inputs, targets), expected, atol=1e-5, rtol=1e-5)


def test_masked_batch_loss_equals_the_response_loss_alone(ch07, entries, gpt2, model):
    dataset = ch07.InstructionDatasetWithPromptLength(entries[:EXAMPLES], gpt2)
    pairs = [dataset[i] for i in range(len(dataset))]
    inputs, targets = ch07.custom_collate_fn_masked(pairs)
    expected = _mean([_loss_alone(model, ids, start=prompt_length - 1) for prompt_length, ids in pairs])
    torch.testing.assert_close(_batch_loss(model, inputs, targets), expected, atol=1e-5, rtol=1e-5)


def test_every_prompt_is_a_token_prefix_of_its_example(ch07, entries, gpt2):
    """Masking by prompt length is exact only if the prompt's tokens start the example's tokens."""
    dataset = ch07.InstructionDatasetWithPromptLength(entries, gpt2)
    for index, entry in enumerate(entries):
        prompt_length, ids = dataset[index]
        assert ids[:prompt_length] == gpt2.encode(ch07.format_input(entry)), f"entry {index}"
