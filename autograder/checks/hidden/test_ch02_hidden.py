"""Hidden checks of chapter 2: the live reference against the submission on inputs drawn from the seed.

Failure messages say which property differs, never the inputs or the expected values.
"""
from __future__ import annotations

import random

import pytest
import torch

from autograder.checks.test_ch02 import NumberTokenizer
from autograder.compare import expect, fail

WORDS = ("ship light keeper harbour fog night sea count lamp tide rope gull stone wind "
         "Café naïve Ærø 北京 🙂 don't they'll 1899 4,017 7:30").split()
PUNCTUATION = list(",.;:?!\"()") + ["--", "_"]


def random_text(rng: random.Random, words: int) -> str:
    parts = []
    for _ in range(words):
        parts.append(rng.choice(WORDS))
        if rng.random() < 0.2:
            parts.append(rng.choice(PUNCTUATION))
        parts.append(rng.choice([" ", " ", " ", "  ", "\n"]))
    return "".join(parts)


@pytest.mark.ch02_simple_tokenizer
def test_simple_tokenizer_agrees_with_reference_on_random_text(sub, ref, seed):
    """hidden: vocabulary, encode and decode on random text"""
    rng = random.Random(seed)
    text = random_text(rng, 300)
    vocab = sub.build_vocab(text)
    expect(vocab == ref.build_vocab(text), "build_vocab differs from the reference on a hidden text")
    mine, theirs = sub.SimpleTokenizerV2(vocab), ref.SimpleTokenizerV2(vocab)
    probe = random_text(rng, 40) + " unseenword another"
    expect(mine.encode(probe) == theirs.encode(probe), "encode differs from the reference on a hidden sentence")
    ids = theirs.encode(probe)
    expect(mine.decode(ids) == theirs.decode(ids), "decode differs from the reference on hidden ids")


@pytest.mark.ch02_bpe_train
def test_bpe_training_agrees_with_reference_on_random_text(sub, ref, seed):
    """hidden: vocab and merges on a random corpus and vocabulary size"""
    rng = random.Random(seed)
    text = "<|endoftext|>".join(random_text(rng, 150) for _ in range(3))
    size = 256 + 1 + rng.randint(20, 60)
    vocab, merges = sub.train_bpe(text, size, ["<|endoftext|>"])
    ref_vocab, ref_merges = ref.train_bpe(text, size, ["<|endoftext|>"])
    for k, (got, want) in enumerate(zip(merges, ref_merges)):
        if tuple(got) != tuple(want):
            fail(f"merge #{k} differs from the reference on a hidden corpus")
    expect(len(merges) == len(ref_merges), "the number of merges differs from the reference on a hidden corpus")
    expect(vocab == ref_vocab, "the vocabulary differs from the reference on a hidden corpus")


@pytest.mark.ch02_bpe_tokenizer
def test_bpe_tokenizer_agrees_with_reference_on_random_text(sub, ref, seed):
    """hidden: encode and decode with reference-trained merges"""
    rng = random.Random(seed)
    vocab, merges = ref.train_bpe(random_text(rng, 400), 256 + 1 + 80, ["<|endoftext|>"])
    mine = sub.BPETokenizer(dict(vocab), list(merges), ["<|endoftext|>"])
    theirs = ref.BPETokenizer(dict(vocab), list(merges), ["<|endoftext|>"])
    for _ in range(5):
        text = random_text(rng, 30) + rng.choice(["", "<|endoftext|>"]) + random_text(rng, 10)
        ids = theirs.encode(text)
        expect(mine.encode(text) == ids, "encode differs from the reference on a hidden text")
        expect(mine.decode(ids) == text, "decode(encode(text)) does not give a hidden text back")


@pytest.mark.ch02_gpt_dataset
def test_dataset_agrees_with_reference_on_random_windows(sub, ref, seed):
    """hidden: every window for a random length, max_length and stride"""
    rng = random.Random(seed)
    n, max_length, stride = rng.randint(30, 90), rng.randint(2, 9), rng.randint(1, 9)
    text = " ".join(str(rng.randint(0, 1000)) for _ in range(n))
    mine = sub.GPTDatasetV1(text, NumberTokenizer(), max_length, stride)
    theirs = ref.GPTDatasetV1(text, NumberTokenizer(), max_length, stride)
    expect(len(mine) == len(theirs), "the number of windows differs from the reference for hidden settings")
    for k in range(len(theirs)):
        a, b = mine[k], theirs[k]
        expect(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), f"window {k} differs from the reference for hidden settings")


@pytest.mark.ch02_create_dataloader
def test_dataloader_agrees_with_reference_on_random_settings(sub, ref, seed, gpt2):
    """hidden: the batches for a random text and settings"""
    rng = random.Random(seed)
    text = random_text(rng, 200)
    settings = dict(batch_size=rng.randint(1, 5), max_length=rng.randint(3, 12), stride=rng.randint(1, 12),
                    shuffle=False, drop_last=rng.random() < 0.5)
    mine = list(sub.create_dataloader_v1(text, **settings))
    theirs = list(ref.create_dataloader_v1(text, **settings))
    expect(len(mine) == len(theirs), "the number of batches differs from the reference for hidden settings")
    for k, ((x, y), (rx, ry)) in enumerate(zip(mine, theirs)):
        expect(torch.equal(x, rx) and torch.equal(y, ry), f"batch {k} differs from the reference for hidden settings")


@pytest.mark.ch02_input_embeddings
def test_embedding_agrees_with_reference_on_random_sizes(sub, ref, seed):
    """hidden: output and gradients for random sizes and weights"""
    rng = random.Random(seed)
    vocab, dim, context = rng.randint(5, 80), rng.randint(1, 16), rng.randint(2, 20)
    torch.manual_seed(seed)
    theirs = ref.InputEmbedding(vocab, dim, context)
    mine = sub.InputEmbedding(vocab, dim, context)
    mine.load_state_dict(theirs.state_dict())
    ids = torch.randint(0, vocab, (rng.randint(1, 4), rng.randint(1, context)))
    out, ref_out = mine(ids), theirs(ids)
    expect(out.shape == ref_out.shape and torch.allclose(out, ref_out, atol=1e-6), "the output differs from the reference for hidden sizes")
    out.square().sum().backward()
    ref_out.square().sum().backward()
    for name in ("tok_emb", "pos_emb"):
        grad, ref_grad = getattr(mine, name).weight.grad, getattr(theirs, name).weight.grad
        expect(grad is not None and torch.allclose(grad, ref_grad, atol=1e-6), f"the gradient of {name} differs from the reference")
