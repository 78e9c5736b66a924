"""Hidden checks of chapter 6: the live reference against the submission on frames, texts,
classifiers and runs drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import contextlib
import io
import math
import random

import pandas as pd
import torch

from autograder.checks.classifier_setups import (
    TINY_GPT,
    classifier_run,
    labelled_batches,
    messages_frame,
    tiny_classifier,
    tiny_gpt,
)
from autograder.checks.modules import parameter_state, trained_parameter_state
from autograder.checks.test_ch06 import accuracy_and_loss, classifier_head, classify_review, spam_data, train_classifier
from autograder.checks.toy_models import CharTokenizer
from autograder.compare import expect, expect_close, expect_equal_tensor, expect_list, expect_number, expect_type, fail
from autograder.split import split

ALPHABET = "abcdefghijklmnopqrstuvwxyz .,!"
REVIEW_TOKENIZER = CharTokenizer(ALPHABET[: TINY_GPT["vocab_size"]])
LOADER_FUNCTIONS = ("calc_loss_loader", "calc_accuracy_loader")
SPLIT_NAMES = ("train_df", "validation_df", "test_df")


def _random_messages(rng: random.Random) -> dict:
    """The columns of a frame of labelled messages (`messages_frame`), more ham than spam, in a random order."""
    num_spam, num_ham = rng.randint(1, 12), rng.randint(12, 40)
    labels = ["spam"] * num_spam + ["ham"] * num_ham
    rng.shuffle(labels)
    return {
        "Label": labels,
        "Text": [f"{label} {i}" for i, label in enumerate(labels)],
        "index": rng.sample(range(1000), len(labels)),
    }


def _texts(frame) -> list | None:
    """The Text column of a frame as a list; None where `frame` is no DataFrame with one."""
    if isinstance(frame, pd.DataFrame) and "Text" in frame.columns:
        return frame["Text"].tolist()
    return None


def _frame_case(seed):
    rng = random.Random(seed)
    return {"columns": _random_messages(rng), "fractions": rng.choice([(0.7, 0.1), (0.6, 0.2), (0.5, 0.35)])}


def _balanced_and_split_texts(sub, case):
    frame = messages_frame(case["columns"])
    balanced = _texts(sub.create_balanced_dataset(frame.copy()))
    parts = sub.random_split(frame.copy(), *case["fractions"])
    part_texts = [_texts(part) for part in parts] if isinstance(parts, (tuple, list)) else None
    return {"balanced": balanced, "parts": part_texts}


@spam_data
@split(setup=_frame_case, produce=_balanced_and_split_texts)
def test_balance_and_split_agree_with_reference(outputs, case, ref):
    """hidden: a random frame of messages balanced and split with random fractions"""
    frame, fractions = messages_frame(case["columns"]), case["fractions"]
    expect(outputs["balanced"] is not None, "create_balanced_dataset should return a DataFrame with a Text column")
    expect(
        outputs["balanced"] == ref.create_balanced_dataset(frame.copy())["Text"].tolist(),
        "create_balanced_dataset of a random frame picked other rows, or put them in another order, than the reference",
    )
    expect(
        isinstance(outputs["parts"], list) and len(outputs["parts"]) == 3,
        "random_split should return three DataFrames: (train_df, validation_df, test_df)",
    )
    for name, mine, theirs in zip(SPLIT_NAMES, outputs["parts"], ref.random_split(frame.copy(), *fractions)):
        expect(mine is not None, f"random_split's {name} should be a DataFrame with a Text column")
        expect(
            mine == theirs["Text"].tolist(),
            f"random_split of a random frame with fractions {fractions}: {name} differs from the reference's",
        )


def _texts_case(seed):
    rng = random.Random(seed)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 15))) for _ in range(rng.randint(2, 6))]
    labels = [rng.randint(0, 1) for _ in texts]
    return {
        "texts": texts,
        "labels": labels,
        "max_length": rng.choice([None, rng.randint(1, 16)]),
        "pad": rng.randint(0, len(ALPHABET) - 1),
    }


def _spam_dataset(spam_dataset_class, case, tmp_path):
    """`spam_dataset_class` built on the case's texts, written to a CSV file as the book's are."""
    path = tmp_path / "texts.csv"
    pd.DataFrame({"Label": case["labels"], "Text": case["texts"]}).to_csv(path, index=None)
    return spam_dataset_class(path, CharTokenizer(ALPHABET), max_length=case["max_length"], pad_token_id=case["pad"])


def _spam_dataset_items(sub, case, tmp_path):
    dataset = _spam_dataset(sub.SpamDataset, case, tmp_path)
    length = len(dataset)
    return {"length": length, "items": [dataset[i] for i in range(min(length, len(case["texts"])))]}


@spam_data
@split(setup=_texts_case, produce=_spam_dataset_items)
def test_spam_dataset_agrees_with_reference(outputs, case, ref, tmp_path):
    """hidden: random texts with random max_length and padding id"""
    theirs = _spam_dataset(ref.SpamDataset, case, tmp_path)
    expect(outputs["length"] == len(theirs), f"len(SpamDataset) is {outputs['length']}; expected {len(theirs)}")
    expect_list(outputs["items"], len(theirs), "the SpamDataset's items")
    for i, item in enumerate(outputs["items"]):
        expect(isinstance(item, (tuple, list)) and len(item) == 2, f"item {i} of SpamDataset should be (ids, label)")
        for got, expected, what in zip(item, theirs[i], ("ids", "label")):
            expect_equal_tensor(got, expected, f"item {i}'s {what} with max_length={case['max_length']}")


def _head_case(seed):
    rng = random.Random(seed)
    n_heads = rng.randint(1, 3)
    cfg = {**TINY_GPT, "emb_dim": n_heads * rng.randint(2, 5), "n_heads": n_heads, "n_layers": rng.randint(1, 3)}
    num_classes = rng.randint(2, 5)
    ids = torch.randint(
        0, cfg["vocab_size"], (2, rng.randint(1, cfg["context_length"])), generator=torch.Generator().manual_seed(seed)
    )
    return {"seed": seed, "cfg": cfg, "num_classes": num_classes, "ids": ids}


def _headed_classifier(add_classification_head, case):
    """add_classification_head on a tiny GPT of the case's size, after seeding torch's global generator
    (the new head's initial weights come from it)."""
    torch.manual_seed(case["seed"])
    return add_classification_head(tiny_gpt(case["seed"] % 1000, case["cfg"]), num_classes=case["num_classes"])


def _trainable_and_logits(sub, case):
    model = _headed_classifier(sub.add_classification_head, case)
    with torch.no_grad():
        logits = model.eval()(case["ids"])
    return {"trainable": {name: param.requires_grad for name, param in model.named_parameters()}, "logits": logits}


@classifier_head
@split(setup=_head_case, produce=_trainable_and_logits)
def test_classifier_head_agrees_with_reference(outputs, case, ref):
    """hidden: a random GPT size and number of classes, the same head after the same seed"""
    theirs = _headed_classifier(ref.add_classification_head, case)
    trainable = {name: param.requires_grad for name, param in theirs.named_parameters()}
    mine, n_layers = outputs["trainable"], case["cfg"]["n_layers"]
    expect_type(mine, dict, "the classifier's parameters")
    for name, requires_grad in mine.items():
        expect(
            trainable.get(name) == requires_grad,
            f"with {n_layers} layers, {name} has requires_grad={requires_grad}; expected {trainable.get(name)}",
        )
    missing = [name for name in trainable if name not in mine]
    if missing:
        fail(f"with {n_layers} layers, the classifier has no parameter named {missing[0]}")
    with torch.no_grad():
        expect_close(
            outputs["logits"],
            theirs.eval()(case["ids"]),
            f"the logits of a classifier with {case['num_classes']} classes",
        )


def _loader_case(seed):
    rng = random.Random(seed)
    return {
        "model_seed": seed % 1000,
        "num_classes": rng.randint(2, 4),
        "num_examples": rng.randint(1, 12),
        "batch_size": rng.randint(1, 4),
        "data_seed": seed,
        "num_tokens": rng.randint(1, TINY_GPT["context_length"]),
        "num_batches": [None, rng.randint(1, 5)],
    }


def _classifier_and_loader(case):
    model = tiny_classifier(case["model_seed"], case["num_classes"])
    loader = labelled_batches(
        case["num_examples"],
        case["batch_size"],
        torch.Generator().manual_seed(case["data_seed"]),
        num_classes=case["num_classes"],
        num_tokens=case["num_tokens"],
    )
    return model, loader


def _losses_and_accuracies(sub, case):
    """calc_loss_batch on the first batch, then for each num_batches every loader function, in that order."""
    model, loader = _classifier_and_loader(case)
    x, y = next(iter(loader))
    batch_loss = sub.calc_loss_batch(x, y, model, "cpu")
    loaders = [
        {
            function: getattr(sub, function)(loader, model, "cpu", num_batches=num_batches)
            for function in LOADER_FUNCTIONS
        }
        for num_batches in case["num_batches"]
    ]
    return {"batch_loss": batch_loss, "loaders": loaders}


@accuracy_and_loss
@split(setup=_loader_case, produce=_losses_and_accuracies)
def test_accuracy_and_losses_agree_with_reference(outputs, case, ref):
    """hidden: random classifiers, batch sizes and num_batches"""
    model, loader = _classifier_and_loader(case)
    x, y = next(iter(loader))
    expect_close(
        outputs["batch_loss"],
        ref.calc_loss_batch(x, y, model, "cpu").detach(),
        f"calc_loss_batch on a {tuple(x.shape)} batch",
    )
    expect_list(outputs["loaders"], len(case["num_batches"]), "the loader results")
    for num_batches, results in zip(case["num_batches"], outputs["loaders"]):
        expect_type(results, dict, "the loader results")
        for function in LOADER_FUNCTIONS:
            got = expect_number(results.get(function), f"{function} with num_batches={num_batches}")
            expected = getattr(ref, function)(loader, model, "cpu", num_batches=num_batches)
            expect(
                math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7),
                f"{function} over {len(loader)} batches "
                f"with num_batches={num_batches} gave {got:.6f}; expected {expected:.6f}",
            )


def _run_case(seed):
    rng = random.Random(seed)
    settings = {"num_epochs": rng.randint(1, 3), "eval_freq": rng.randint(1, 4), "eval_iter": rng.randint(1, 3)}
    run = {"train_batches": rng.randint(2, 6), "batch_size": rng.randint(1, 3), "lr": rng.choice([0.005, 0.02])}
    return {"settings": settings, "run": {"seed": seed % 1000, **run}}


def _trained(train_classifier_simple, case):
    """train_classifier_simple on a fresh classifier_run of the case, printing nothing; (its result, the run)."""
    run = classifier_run(**case["run"])
    with contextlib.redirect_stdout(io.StringIO()):
        result = train_classifier_simple(
            run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **case["settings"]
        )
    return result, run


def _training_result_and_weights(sub, case):
    result, run = _trained(sub.train_classifier_simple, case)
    return {"result": result, "parameters": parameter_state(run.model)}


def _numbers(values, what: str) -> list[float]:
    """`values` (a list, a tuple or a 1-D tensor of numbers) as floats; fails naming `what` otherwise."""
    if isinstance(values, torch.Tensor) and values.dim() == 1:
        values = values.tolist()
    expect(isinstance(values, (list, tuple)), f"{what} should be a list of numbers; got {type(values).__name__}")
    return [expect_number(value, what) for value in values]


@train_classifier
@split(setup=_run_case, produce=_training_result_and_weights)
def test_train_classifier_simple_agrees_with_reference(outputs, case, ref):
    """hidden: a run with random epochs, eval_freq, eval_iter and batch counts"""
    expected, run = _trained(ref.train_classifier_simple, case)
    got = outputs["result"]
    expect(isinstance(got, (tuple, list)), f"train_classifier_simple should return 5 values; got {type(got).__name__}")
    expect(len(got) == 5, f"train_classifier_simple returned {len(got)} values; expected 5")
    for index, (values, expected_values) in enumerate(zip(got[:4], expected[:4])):
        values = _numbers(values, f"train_classifier_simple's result {index}")
        expect(
            len(values) == len(expected_values),
            f"train_classifier_simple's result {index} has {len(values)} entries; expected {len(expected_values)}",
        )
        expect_close(
            torch.tensor(values),
            torch.tensor([float(v) for v in expected_values]),
            f"train_classifier_simple's result {index}",
            atol=1e-4,
            rtol=1e-4,
        )
    examples_seen = int(expect_number(got[4], "examples_seen"))
    expect(examples_seen == expected[4], f"examples_seen is {examples_seen}; expected {expected[4]}")
    parameters = outputs["parameters"]
    expect_type(parameters, dict, "the model's parameters")
    for name, expected_param in trained_parameter_state(run.model).items():
        expect_close(
            parameters.get(name),
            expected_param,
            f"the model's {name} after train_classifier_simple",
            atol=1e-4,
            rtol=1e-4,
        )


def _reviews_case(seed):
    rng = random.Random(seed)
    trials = []
    for trial in range(6):
        text = "".join(rng.choice(REVIEW_TOKENIZER.alphabet) for _ in range(rng.randint(1, 14)))
        max_length = rng.randint(1, TINY_GPT["context_length"])
        pad = rng.randint(0, len(REVIEW_TOKENIZER.alphabet) - 1)
        trials.append({"model_seed": seed % 1000 + trial, "text": text, "max_length": max_length, "pad": pad})
    return trials


def _review_label(classify, trial):
    """`classify` (a classify_review) on the trial's text with a fresh tiny classifier of the trial's seed."""
    return classify(
        trial["text"],
        tiny_classifier(trial["model_seed"]),
        REVIEW_TOKENIZER,
        "cpu",
        max_length=trial["max_length"],
        pad_token_id=trial["pad"],
    )


def _review_labels(sub, case):
    return [_review_label(sub.classify_review, trial) for trial in case]


@classify_review
@split(setup=_reviews_case, produce=_review_labels)
def test_classify_review_agrees_with_reference(outputs, case, ref):
    """hidden: random texts and max_length on a random tiny GPT classifier"""
    expect_list(outputs, len(case), "classify_review's answers")
    for trial, got in zip(case, outputs):
        expected = _review_label(ref.classify_review, trial)
        expect(
            got == expected,
            f"classify_review of a {len(trial['text'])}-character text with "
            f"max_length={trial['max_length']} said {got!r}; the reference says {expected!r}",
        )
