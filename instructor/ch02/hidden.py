"""Hidden checks of chapter 2: the live reference against the submission on inputs drawn from the seed.

Failure messages say which property differs, never the inputs or the expected values.
"""

from __future__ import annotations

import random

import pytest
import torch

from autograder.checks.modules import load_parameters, parameter_state
from autograder.checks.test_ch02 import NumberTokenizer
from autograder.compare import expect, expect_tensor, expect_type, fail
from autograder.split import split

WORDS = (
    "ship light keeper harbour fog night sea count lamp tide rope gull stone wind "
    "Café naïve Ærø 北京 🙂 don't they'll 1899 4,017 7:30"
).split()
PUNCTUATION = list(',.;:?!"()') + ["--", "_"]
SPECIAL_TOKENS = ["<|endoftext|>"]


def random_text(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        parts.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            parts.append(rng.choice(PUNCTUATION))
        parts.append(rng.choice([" ", " ", " ", "  ", "\n"]))
    return "".join(parts)


def _simple_tokenizer_setup(ref, seed):
    """A hidden text, a probe sentence, and the reference's ids of the probe (what decode gets)."""
    rng = random.Random(seed)
    text = random_text(rng, 300)
    probe = random_text(rng, 40) + " unseenword another"
    return {"text": text, "probe": probe, "ids": ref.SimpleTokenizerV2(ref.build_vocab(text)).encode(probe)}


def _simple_tokenizer_outputs(sub, case):
    vocab = sub.build_vocab(case["text"])
    mine = sub.SimpleTokenizerV2(vocab)
    return {"vocab": vocab, "encoded": mine.encode(case["probe"]), "decoded": mine.decode(case["ids"])}


@pytest.mark.ch02_simple_tokenizer
@split(setup=_simple_tokenizer_setup, produce=_simple_tokenizer_outputs)
def test_simple_tokenizer_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: vocabulary, encode and decode on random text"""
    vocab = ref.build_vocab(case["text"])
    expect(outputs["vocab"] == vocab, "build_vocab differs from the reference on a hidden text")
    theirs = ref.SimpleTokenizerV2(vocab)
    expect(outputs["encoded"] == theirs.encode(case["probe"]), "encode differs from the reference on a hidden sentence")
    expect(outputs["decoded"] == theirs.decode(case["ids"]), "decode differs from the reference on hidden ids")


def _bpe_training_case(seed):
    rng = random.Random(seed)
    text = "<|endoftext|>".join(random_text(rng, 150) for _ in range(3))
    return {"text": text, "vocab_size": 256 + 1 + rng.randint(20, 60)}


def _bpe_training_outputs(sub, case):
    return {"result": sub.train_bpe(case["text"], case["vocab_size"], list(SPECIAL_TOKENS))}


@pytest.mark.ch02_bpe_train
@split(setup=_bpe_training_case, produce=_bpe_training_outputs)
def test_bpe_training_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: vocab and merges on a random corpus and vocabulary size"""
    result = outputs["result"]
    expect(isinstance(result, (tuple, list)) and len(result) == 2, "train_bpe should return (vocab, merges)")
    vocab, merges = result
    expect_type(merges, (list, tuple), "the merges train_bpe returns")
    ref_vocab, ref_merges = ref.train_bpe(case["text"], case["vocab_size"], list(SPECIAL_TOKENS))
    for k, (got, want) in enumerate(zip(merges, ref_merges)):
        if not isinstance(got, (list, tuple)) or tuple(got) != tuple(want):
            fail(f"merge #{k} differs from the reference on a hidden corpus")
    expect(len(merges) == len(ref_merges), "the number of merges differs from the reference on a hidden corpus")
    expect(vocab == ref_vocab, "the vocabulary differs from the reference on a hidden corpus")


def _bpe_tokenizer_setup(ref, seed):
    """Reference-trained merges, hidden texts, and the reference's ids of each text (what decode gets)."""
    rng = random.Random(seed)
    vocab, merges = ref.train_bpe(random_text(rng, 400), 256 + 1 + 80, list(SPECIAL_TOKENS))
    theirs = ref.BPETokenizer(dict(vocab), list(merges), list(SPECIAL_TOKENS))
    texts = [random_text(rng, 30) + rng.choice(["", "<|endoftext|>"]) + random_text(rng, 10) for _ in range(5)]
    return {
        "vocab": dict(vocab),
        "merges": list(merges),
        "texts": texts,
        "ids": [theirs.encode(text) for text in texts],
    }


def _bpe_tokenizer_outputs(sub, case):
    mine = sub.BPETokenizer(case["vocab"], case["merges"], list(SPECIAL_TOKENS))
    encoded, decoded = [], []
    for text, ids in zip(case["texts"], case["ids"]):
        encoded.append(mine.encode(text))
        decoded.append(mine.decode(ids))
    return {"encoded": encoded, "decoded": decoded}


@pytest.mark.ch02_bpe_tokenizer
@split(setup=_bpe_tokenizer_setup, produce=_bpe_tokenizer_outputs)
def test_bpe_tokenizer_agrees_with_reference_on_random_text(outputs, case, ref):
    """hidden: encode and decode with reference-trained merges"""
    encoded, decoded = outputs["encoded"], outputs["decoded"]
    for k, (text, ids) in enumerate(zip(case["texts"], case["ids"])):
        expect(encoded[k] == ids, "encode differs from the reference on a hidden text")
        expect(decoded[k] == text, "decode(encode(text)) does not give a hidden text back")


def _dataset_case(seed):
    rng = random.Random(seed)
    n, max_length, stride = rng.randint(30, 90), rng.randint(2, 9), rng.randint(1, 9)
    text = " ".join(str(rng.randint(0, 1000)) for _ in range(n))
    return {"text": text, "max_length": max_length, "stride": stride}


def _dataset_of(module, case: dict):
    return module.GPTDatasetV1(case["text"], NumberTokenizer(), case["max_length"], case["stride"])


def _dataset_outputs(sub, case):
    mine = _dataset_of(sub, case)
    return {"length": len(mine), "windows": [mine[k] for k in range(len(mine))]}


def _expect_tensor_pair(item, what: str) -> None:
    expect(
        isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, torch.Tensor) for t in item),
        f"{what} should be a pair of tensors",
    )


@pytest.mark.ch02_gpt_dataset
@split(setup=_dataset_case, produce=_dataset_outputs)
def test_dataset_agrees_with_reference_on_random_windows(outputs, case, ref):
    """hidden: every window for a random length, max_length and stride"""
    theirs = _dataset_of(ref, case)
    windows = outputs["windows"]
    expect(
        outputs["length"] == len(theirs) and len(windows) == len(theirs),
        "the number of windows differs from the reference for hidden settings",
    )
    for k in range(len(theirs)):
        a, b = windows[k], theirs[k]
        _expect_tensor_pair(a, f"window {k} (input_ids, target_ids)")
        expect(
            torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]),
            f"window {k} differs from the reference for hidden settings",
        )


def _dataloader_case(seed):
    rng = random.Random(seed)
    text = random_text(rng, 200)
    settings = dict(
        batch_size=rng.randint(1, 5),
        max_length=rng.randint(3, 12),
        stride=rng.randint(1, 12),
        shuffle=False,
        drop_last=rng.random() < 0.5,
    )
    return {"text": text, "settings": settings}


def _dataloader_outputs(sub, case, gpt2):
    """The batches; `gpt2` serves tiktoken's "gpt2" encoding to the submission while it runs."""
    return {"batches": list(sub.create_dataloader_v1(case["text"], **case["settings"]))}


@pytest.mark.ch02_create_dataloader
@split(setup=_dataloader_case, produce=_dataloader_outputs)
def test_dataloader_agrees_with_reference_on_random_settings(outputs, case, ref, gpt2):
    """hidden: the batches for a random text and settings"""
    mine = outputs["batches"]
    theirs = list(ref.create_dataloader_v1(case["text"], **case["settings"]))
    expect(len(mine) == len(theirs), "the number of batches differs from the reference for hidden settings")
    for k, (batch, (rx, ry)) in enumerate(zip(mine, theirs)):
        _expect_tensor_pair(batch, f"batch {k} (inputs, targets)")
        x, y = batch
        expect(torch.equal(x, rx) and torch.equal(y, ry), f"batch {k} differs from the reference for hidden settings")


def _embedding_setup(ref, seed):
    """Random sizes, the reference's initial weights for them, and token ids that fit."""
    rng = random.Random(seed)
    vocab, dim, context = rng.randint(5, 80), rng.randint(1, 16), rng.randint(2, 20)
    torch.manual_seed(seed)
    config = {"vocab_size": vocab, "emb_dim": dim, "context_length": context}
    state = parameter_state(ref.InputEmbedding(**config))
    ids = torch.randint(0, vocab, (rng.randint(1, 4), rng.randint(1, context)))
    return {"config": config, "state": state, "ids": ids}


def _embedding_with_state(module, case: dict):
    return load_parameters(module.InputEmbedding(**case["config"]), case["state"], "InputEmbedding")


def _embedding_outputs(sub, case):
    """The output and the gradients of the squared sum of the output."""
    mine = _embedding_with_state(sub, case)
    out = mine(case["ids"])
    if isinstance(out, torch.Tensor) and out.requires_grad:
        out.square().sum().backward()
    return {"out": out, "grads": {name: param.grad for name, param in mine.named_parameters()}}


@pytest.mark.ch02_input_embeddings
@split(setup=_embedding_setup, produce=_embedding_outputs)
def test_embedding_agrees_with_reference_on_random_sizes(outputs, case, ref):
    """hidden: output and gradients for random sizes and weights"""
    theirs = _embedding_with_state(ref, case)
    ref_out = theirs(case["ids"])
    out = outputs["out"]
    expect_tensor(out, "the InputEmbedding output")
    expect(
        out.shape == ref_out.shape and torch.allclose(out.double(), ref_out.double(), atol=1e-6),
        "the output differs from the reference for hidden sizes",
    )
    ref_out.square().sum().backward()
    for name in ("tok_emb", "pos_emb"):
        grad, ref_grad = outputs["grads"].get(f"{name}.weight"), getattr(theirs, name).weight.grad
        expect(
            isinstance(grad, torch.Tensor)
            and grad.shape == ref_grad.shape
            and torch.allclose(grad.double(), ref_grad.double(), atol=1e-6),
            f"the gradient of {name} differs from the reference",
        )
