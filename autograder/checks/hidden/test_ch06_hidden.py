"""Hidden checks of chapter 6: the live reference against the submission on frames, texts,
classifiers and runs drawn from the seed. Messages say what differs, never the inputs."""
from __future__ import annotations

import contextlib
import io
import math
import random

import pandas as pd
import torch

from autograder.checks.classifier_setups import TINY_GPT, classifier_run, labelled_batches, tiny_classifier, tiny_gpt
from autograder.checks.test_ch06 import accuracy_and_loss, classifier_head, classify_review, spam_data, train_classifier
from autograder.checks.toy_models import CharTokenizer
from autograder.compare import expect, expect_close, expect_equal_tensor

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!"


def _random_messages(rng: random.Random) -> pd.DataFrame:
    num_spam, num_ham = rng.randint(1, 12), rng.randint(12, 40)
    labels = ["spam"] * num_spam + ["ham"] * num_ham
    rng.shuffle(labels)
    return pd.DataFrame({"Label": labels, "Text": [f"{label} {i}" for i, label in enumerate(labels)]},
                        index=rng.sample(range(1000), len(labels)))


@spam_data
def test_balance_and_split_agree_with_reference(sub, ref, seed):
    """hidden: a random frame of messages balanced and split with random fractions"""
    rng = random.Random(seed)
    df = _random_messages(rng)
    got, expected = sub.create_balanced_dataset(df.copy()), ref.create_balanced_dataset(df.copy())
    expect(got["Text"].tolist() == expected["Text"].tolist(), "create_balanced_dataset of a random frame picked other "
           "rows, or put them in another order, than the reference")
    fractions = rng.choice([(0.7, 0.1), (0.6, 0.2), (0.5, 0.35)])
    for name, mine, theirs in zip(("train_df", "validation_df", "test_df"), sub.random_split(df.copy(), *fractions),
                                  ref.random_split(df.copy(), *fractions)):
        expect(mine["Text"].tolist() == theirs["Text"].tolist(),
               f"random_split of a random frame with fractions {fractions}: {name} differs from the reference's")


@spam_data
def test_spam_dataset_agrees_with_reference(sub, ref, seed, tmp_path):
    """hidden: random texts with random max_length and padding id"""
    rng = random.Random(seed)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 15))) for _ in range(rng.randint(2, 6))]
    path = tmp_path / "texts.csv"
    pd.DataFrame({"Label": [rng.randint(0, 1) for _ in texts], "Text": texts}).to_csv(path, index=None)
    tokenizer = CharTokenizer(ALPHABET)
    max_length, pad = rng.choice([None, rng.randint(1, 16)]), rng.randint(0, len(ALPHABET) - 1)
    mine = sub.SpamDataset(path, tokenizer, max_length=max_length, pad_token_id=pad)
    theirs = ref.SpamDataset(path, tokenizer, max_length=max_length, pad_token_id=pad)
    expect(len(mine) == len(theirs), f"len(SpamDataset) is {len(mine)}; expected {len(theirs)}")
    for i in range(len(theirs)):
        for got, expected, what in zip(mine[i], theirs[i], ("ids", "label")):
            expect_equal_tensor(got, expected, f"item {i}'s {what} with max_length={max_length}")


@classifier_head
def test_classifier_head_agrees_with_reference(sub, ref, seed):
    """hidden: a random GPT size and number of classes, the same head after the same seed"""
    rng = random.Random(seed)
    n_heads = rng.randint(1, 3)
    cfg = {**TINY_GPT, "emb_dim": n_heads * rng.randint(2, 5), "n_heads": n_heads, "n_layers": rng.randint(1, 3)}
    num_classes = rng.randint(2, 5)
    models = []
    for function in (sub.add_classification_head, ref.add_classification_head):
        torch.manual_seed(seed)
        models.append(function(tiny_gpt(seed % 1000, cfg), num_classes=num_classes))
    mine, theirs = models
    trainable = {name: p.requires_grad for name, p in theirs.named_parameters()}
    for name, param in mine.named_parameters():
        expect(trainable.get(name) == param.requires_grad, f"with {cfg['n_layers']} layers, {name} has "
               f"requires_grad={param.requires_grad}; expected {trainable.get(name)}")
    ids = torch.randint(0, cfg["vocab_size"], (2, rng.randint(1, cfg["context_length"])))
    with torch.no_grad():
        expect_close(mine.eval()(ids), theirs.eval()(ids), f"the logits of a classifier with {num_classes} classes")


@accuracy_and_loss
def test_accuracy_and_losses_agree_with_reference(sub, ref, seed):
    """hidden: random classifiers, batch sizes and num_batches"""
    rng = random.Random(seed)
    num_classes = rng.randint(2, 4)
    model = tiny_classifier(seed % 1000, num_classes)
    loader = labelled_batches(rng.randint(1, 12), rng.randint(1, 4), torch.Generator().manual_seed(seed),
                              num_classes=num_classes, num_tokens=rng.randint(1, TINY_GPT["context_length"]))
    x, y = next(iter(loader))
    expect_close(sub.calc_loss_batch(x, y, model, "cpu").detach(), ref.calc_loss_batch(x, y, model, "cpu").detach(),
                 f"calc_loss_batch on a {tuple(x.shape)} batch")
    for num_batches in (None, rng.randint(1, 5)):
        for function in ("calc_loss_loader", "calc_accuracy_loader"):
            got = float(getattr(sub, function)(loader, model, "cpu", num_batches=num_batches))
            expected = getattr(ref, function)(loader, model, "cpu", num_batches=num_batches)
            expect(math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7), f"{function} over {len(loader)} batches "
                   f"with num_batches={num_batches} gave {got:.6f}; expected {expected:.6f}")


@train_classifier
def test_train_classifier_simple_agrees_with_reference(sub, ref, seed):
    """hidden: a run with random epochs, eval_freq, eval_iter and batch counts"""
    rng = random.Random(seed)
    settings = {"num_epochs": rng.randint(1, 3), "eval_freq": rng.randint(1, 4), "eval_iter": rng.randint(1, 3)}
    batches, batch_size, lr = rng.randint(2, 6), rng.randint(1, 3), rng.choice([0.005, 0.02])
    runs = [classifier_run(seed=seed % 1000, lr=lr, train_batches=batches, batch_size=batch_size) for _ in range(2)]
    results = []
    for function, run in zip((sub.train_classifier_simple, ref.train_classifier_simple), runs):
        with contextlib.redirect_stdout(io.StringIO()):
            results.append(function(run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **settings))
    got, expected = results
    expect(len(got) == 5, f"train_classifier_simple returned {len(got)} values; expected 5")
    for index, (values, expected_values) in enumerate(zip(got[:4], expected[:4])):
        expect(len(values) == len(expected_values), f"train_classifier_simple's result {index} has {len(values)} "
               f"entries; expected {len(expected_values)}")
        expect_close(torch.tensor([float(v) for v in values]), torch.tensor([float(v) for v in expected_values]),
                     f"train_classifier_simple's result {index}", atol=1e-4, rtol=1e-4)
    expect(int(got[4]) == expected[4], f"examples_seen is {int(got[4])}; expected {expected[4]}")
    for (name, param), expected_param in zip(runs[0].model.named_parameters(), runs[1].model.parameters()):
        expect_close(param, expected_param, f"the model's {name} after train_classifier_simple", atol=1e-4, rtol=1e-4)


@classify_review
def test_classify_review_agrees_with_reference(sub, ref, seed):
    """hidden: random texts and max_length on a random tiny GPT classifier"""
    rng = random.Random(seed)
    tokenizer = CharTokenizer(ALPHABET[:TINY_GPT["vocab_size"]])
    for trial in range(6):
        model = tiny_classifier(seed % 1000 + trial)
        text = "".join(rng.choice(tokenizer.alphabet) for _ in range(rng.randint(1, 14)))
        max_length, pad = rng.randint(1, TINY_GPT["context_length"]), rng.randint(0, len(tokenizer.alphabet) - 1)
        got = sub.classify_review(text, model, tokenizer, "cpu", max_length=max_length, pad_token_id=pad)
        expected = ref.classify_review(text, model, tokenizer, "cpu", max_length=max_length, pad_token_id=pad)
        expect(got == expected, f"classify_review of a {len(text)}-character text with max_length={max_length} said "
               f"{got!r}; the reference says {expected!r}")
