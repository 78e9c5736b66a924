"""Public checks of chapter 6: the spam data, the classification head, last-token loss and accuracy,
the fine-tuning loop and classifying a new message.

The data functions run on a small frame of messages recorded with the book's
seeds, and the dataset on a CSV file written by the check. The model pieces run
on a tiny GPTModel turned into a classifier (`classifier_setups`), so a whole
training run takes milliseconds and is compared with the reference's recorded
run. Forward hooks log the mode of every call from outside the submission, and an
event log puts them in order with the optimizer steps, so evaluation without
eval()/no_grad, and training steps left in eval mode after an evaluation or an
epoch, show and are told apart. `classify_review` runs on a model whose class at a
position is the vote of the token there, so the answer tells which token was read
last; it is laid out as a GPTModel (pos_emb) or as a Llama3Model (cfg), with its
context length, embedding width and vocabulary all different, so the number of
tokens it is given tells where the context length was read.

Every check is split (`autograder.split`): the produce step runs the submission
and returns what it saw as data (returned values, frames' columns, logged calls,
requires_grad flags, trained weights), and the check decides on that data.
"""

from __future__ import annotations

import contextlib
import io
import math

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.classifier_setups import (
    TINY_GPT,
    ClassifierRun,
    ForwardLog,
    LlamaLayout,
    classifier_run,
    expect_token_id_batch,
    labelled_batches,
    messages_frame,
    tiny_classifier,
    tiny_gpt,
    trainable_names,
)
from autograder.checks.modules import load_parameters, parameter_state, trained_parameter_state
from autograder.checks.toy_models import CharTokenizer
from autograder.checks.training_setups import StepLog
from autograder.compare import (
    CheckFailure,
    expect,
    expect_close,
    expect_equal_tensor,
    expect_list,
    expect_number,
    expect_tensor,
    expect_type,
    fail,
)
from autograder.split import split

spam_data = pytest.mark.ch06_spam_data
classifier_head = pytest.mark.ch06_classifier_head
accuracy_and_loss = pytest.mark.ch06_accuracy_and_loss
train_classifier = pytest.mark.ch06_train_classifier
classify_review = pytest.mark.ch06_classify_review

# Losses and weights after a few float32 steps agree to ~1e-6 whichever way the sums are taken.
TOL = 1e-4

# What expect_number takes: a Python number or a one-element tensor.
NUMBER_TYPES = (int, float, torch.Tensor)


def _observed(value, kinds: tuple[type, ...] | type):
    """Produce: `value` where it is one of `kinds`, else {"type": its type's name}, so that the check sees
    a value of another type as that type (a NumPy number is not made a float, nor an array a tensor)."""
    return value if isinstance(value, kinds) else {"type": type(value).__name__}


def _type_name(value) -> str:
    """Compare: the name of the type the submission gave for an `_observed` value."""
    return value["type"] if isinstance(value, dict) else type(value).__name__


def _expect_observed_tensor(value, what: str, **spec) -> None:
    """Compare: an `_observed` value is a tensor (of `spec`'s shape and dtype), as expect_tensor checks it."""
    expect(isinstance(value, torch.Tensor), f"{what} should be a Tensor; got {_type_name(value)}")
    expect_tensor(value, what, **spec)


def _observed_number(value, what: str) -> float:
    """Compare: an `_observed` value as a float, as expect_number takes it."""
    expect(not isinstance(value, dict), f"{what} should be a number; got {_type_name(value)}")
    return expect_number(value, what)


def _column(frame, name: str) -> list | None:
    """frame[name] as a list; None where `frame` is no DataFrame with one such column."""
    if isinstance(frame, pd.DataFrame) and isinstance(frame.get(name), pd.Series):
        return frame[name].tolist()
    return None


def _frame_facts(frame) -> dict:
    """Produce: what the checks read of a returned frame: whether it is a DataFrame, its type's name, and
    (None where it is none) its columns, its index and its Text and Label columns as lists."""
    is_frame = isinstance(frame, pd.DataFrame)
    return {
        "is_frame": is_frame,
        "type": type(frame).__name__,
        "columns": list(frame.columns) if is_frame else None,
        "index": list(frame.index) if is_frame else None,
        "texts": _column(frame, "Text"),
        "labels": _column(frame, "Label"),
    }


def _frame_texts(facts: dict, what: str) -> list:
    """Compare: the Text column of a `_frame_facts` frame; fails unless it is a DataFrame with one."""
    expect(facts["is_frame"] is True, f"{what} should be a DataFrame; got {facts['type']}")
    expect("Text" in facts["columns"], f"{what} has no 'Text' column (its columns: {facts['columns']})")
    expect_type(facts["texts"], list, f"{what}'s Text column")
    return facts["texts"]


# ---------------------------------------------------------------- ch06.spam_data


def _balanced(sub, recorded):
    columns = recorded["messages"]
    df = messages_frame(columns)
    balanced = sub.create_balanced_dataset(df)
    return {"input_unchanged": df.equals(messages_frame(columns)), "balanced": _frame_facts(balanced)}


@spam_data
@split(produce=_balanced)
def test_create_balanced_dataset_keeps_every_spam_and_as_many_ham(outputs, recorded):
    """every spam row once, as many distinct ham rows, the columns kept and the input left as it was"""
    columns = recorded["messages"]
    expect(
        outputs["input_unchanged"] is True,
        "create_balanced_dataset changed the frame it was given; return a new one",
    )
    balanced = outputs["balanced"]
    texts = _frame_texts(balanced, "create_balanced_dataset(df)")
    expect(
        balanced["columns"] == ["Label", "Text"],
        f"create_balanced_dataset(df) has the columns {balanced['columns']}; expected df's, ['Label', 'Text']",
    )
    expect_type(balanced["labels"], list, "create_balanced_dataset(df)'s Label column")
    spam = [t for t, label in zip(columns["Text"], columns["Label"], strict=True) if label == "spam"]
    ham = {t for t, label in zip(columns["Text"], columns["Label"], strict=True) if label == "ham"}
    counts = {label: balanced["labels"].count(label) for label in ("spam", "ham")}
    expect(
        counts["spam"] == len(spam),
        f"create_balanced_dataset(df) has {counts['spam']} spam rows; df has {len(spam)}, and all of them are kept",
    )
    expect(
        counts["ham"] == len(spam),
        f"create_balanced_dataset(df) has {counts['ham']} ham rows; expected as many as spam rows, {len(spam)}",
    )
    expect(
        sorted(t for t in texts if t not in ham) == sorted(spam),
        "create_balanced_dataset(df) does not hold every spam row of df exactly once",
    )
    expect(
        len(set(texts)) == len(texts),
        "create_balanced_dataset(df) holds a row twice: sample the ham rows without replacement",
    )


@spam_data
@split(produce=_balanced)
def test_create_balanced_dataset_samples_like_the_book(outputs, recorded):
    """the ham rows drawn by .sample(num_spam, random_state=123), first, then the spam rows in their order"""
    texts = _frame_texts(outputs["balanced"], "create_balanced_dataset(df)")
    expected = recorded["balanced_texts"]
    if texts == expected:
        return
    if sorted(texts) == sorted(expected):
        fail(
            "create_balanced_dataset(df) has the right rows in another order: the sampled ham rows first, "
            "then the spam rows in df's order (pd.concat([ham_subset, spam_rows]))"
        )
    fail(
        "create_balanced_dataset(df) picked other ham rows than the book's "
        "df[df['Label'] == 'ham'].sample(num_spam, random_state=123)"
    )


SPLIT_PARTS = ("train_df", "validation_df", "test_df")
# (rows, train_frac, validation_frac): 27 * 0.7 = 18.9 and 27 * 0.1 = 2.7 tell int() from round(), and
# int(27 * 0.8) = 21 from 18 + 2; 1,494 rows are the balanced SMS Spam Collection.
SPLIT_CASES = ((27, 0.7, 0.1), (27, 0.5, 0.25), (1494, 0.7, 0.1))


def _numbered_frame(num_rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"Label": [i % 2 for i in range(num_rows)], "Text": [f"text {i}" for i in range(num_rows)]},
        index=range(500, 500 + 2 * num_rows, 2),
    )


def _split_facts(parts) -> list | None:
    """Produce: random_split's result as a list of `_frame_facts`; None where it is no tuple or list."""
    return [_frame_facts(part) for part in parts] if isinstance(parts, (tuple, list)) else None


def _expect_three_parts(parts) -> None:
    """Compare: `_split_facts` of three parts."""
    expect(
        isinstance(parts, list) and len(parts) == len(SPLIT_PARTS),
        "random_split should return (train_df, validation_df, test_df)",
    )


def _numbered_splits(sub):
    return [
        _split_facts(sub.random_split(_numbered_frame(num_rows), train_frac, validation_frac))
        for num_rows, train_frac, validation_frac in SPLIT_CASES
    ]


@spam_data
@split(produce=_numbered_splits)
def test_random_split_cuts_with_int_fractions(outputs):
    """int(n * train_frac) and int(n * validation_frac) rows, the rest to test, every row in exactly one part"""
    expect_list(outputs, len(SPLIT_CASES), "the random_split results")
    for (num_rows, train_frac, validation_frac), parts in zip(SPLIT_CASES, outputs, strict=True):
        _expect_three_parts(parts)
        texts = [_frame_texts(part, f"random_split's {name}") for part, name in zip(parts, SPLIT_PARTS, strict=True)]
        sizes = tuple(len(t) for t in texts)
        train_end = int(num_rows * train_frac)
        expected = (train_end, int(num_rows * validation_frac), num_rows - train_end - int(num_rows * validation_frac))
        if sizes != expected:
            hint = ""
            if sizes[0] == round(num_rows * train_frac) != train_end:
                hint = ": cut with int(), which rounds down, not round()"
            elif sizes[0] + sizes[1] == int(num_rows * (train_frac + validation_frac)):
                hint = ": the validation part ends at train_end + int(len(df) * validation_frac)"
            fail(
                f"random_split of {num_rows} rows with fractions {train_frac}, {validation_frac} gave parts of "
                f"{sizes} rows; expected {expected}{hint}"
            )
        expect(
            sorted(sum(texts, [])) == sorted(_numbered_frame(num_rows)["Text"]),
            f"random_split of {num_rows} rows: the three parts together do not hold every row exactly once",
        )


def _book_split(sub, recorded):
    df = messages_frame(recorded["messages"])
    parts = sub.random_split(df, 0.7, 0.1)
    return {"input_unchanged": df.equals(messages_frame(recorded["messages"])), "parts": _split_facts(parts)}


@spam_data
@split(produce=_book_split)
def test_random_split_shuffles_like_the_book(outputs, recorded):
    """the rows in the order of df.sample(frac=1, random_state=123), index reset, then cut"""
    expect(outputs["input_unchanged"] is True, "random_split changed the frame it was given; shuffle a copy")
    parts = outputs["parts"]
    _expect_three_parts(parts)
    part_texts = []
    for part, expected, name in zip(parts, recorded["split_texts"], SPLIT_PARTS, strict=True):
        texts = _frame_texts(part, f"random_split's {name}")
        if texts != expected:
            in_order = texts == [t for t in recorded["messages"]["Text"] if t in set(expected)]
            fail(
                f"random_split's {name} holds other rows than the book's split"
                + (
                    ": shuffle first, with df.sample(frac=1, random_state=123)"
                    if in_order
                    else " (shuffle with df.sample(frac=1, random_state=123), then cut)"
                )
            )
        part_texts.append(texts)
    for part, name in zip(parts, SPLIT_PARTS, strict=True):
        expect(
            part["columns"] == ["Label", "Text"],
            f"random_split's {name} has the columns {part['columns']}; expected df's, ['Label', 'Text']"
            + (
                ": reset the index with reset_index(drop=True), so that the old index does not become a column"
                if "index" in part["columns"]
                else ""
            ),
        )
    start = 0
    for part, texts, name in zip(parts, part_texts, SPLIT_PARTS, strict=True):
        expect(
            part["index"] == list(range(start, start + len(texts))),
            f"random_split's {name} has the index "
            f"{part['index'][:3]}...; reset the index after shuffling (reset_index(drop=True))",
        )
        start += len(texts)


SPAM_TEXTS = [
    "Ok lar... Joking wif u oni...",
    "Free entry in 2 a wkly comp to win FA Cup final tkts 21st May 2005!",
    "Hi",
    "Nah I don't think he goes to usf, he lives around here though",
    "WINNER!! Claim your prize now",
]
SPAM_LABELS = [0, 1, 0, 0, 1]


@pytest.fixture
def spam_csv(tmp_path):
    path = tmp_path / "messages.csv"
    pd.DataFrame({"Label": SPAM_LABELS, "Text": SPAM_TEXTS}).to_csv(path, index=None)
    return path


def _item_facts(item):
    """Produce: a dataset item as a list of its `_observed` tensors; its `_observed` type where it is no tuple or list."""
    if isinstance(item, (tuple, list)):
        return [_observed(part, torch.Tensor) for part in item]
    return {"type": type(item).__name__}


def _dataset_facts(dataset) -> dict:
    """Produce: what the checks read of a SpamDataset: its length, its max_length ("missing" where it has
    none), each of its encoded_texts as a 1-D tensor (None where it has none) and its first items (`_item_facts`)."""
    length = len(dataset)
    encoded = getattr(dataset, "encoded_texts", None)
    return {
        "length": length,
        "max_length": getattr(dataset, "max_length", "missing"),
        "encoded_texts": None if encoded is None else [torch.as_tensor(list(encoded[i])) for i in range(len(encoded))],
        "items": [_item_facts(dataset[i]) for i in range(min(length, len(SPAM_TEXTS)))],
    }


def _expect_dataset(dataset: dict, tokenizer, max_length: int, pad_token_id: int, what: str) -> None:
    """Every item of the `_dataset_facts` is the text's ids cut to max_length and padded with pad_token_id,
    with its label."""
    expect(
        dataset["length"] == len(SPAM_TEXTS),
        f"len({what}) is {dataset['length']}; the file has {len(SPAM_TEXTS)} rows",
    )
    expect(dataset["max_length"] == max_length, f"{what}.max_length is {dataset['max_length']}; expected {max_length}")
    encoded_texts = dataset["encoded_texts"]
    expect(
        isinstance(encoded_texts, list) and len(encoded_texts) == len(SPAM_TEXTS),
        f"{what}.encoded_texts should hold one list of token ids per row",
    )
    expect_list(dataset["items"], len(SPAM_TEXTS), f"the items of {what}")
    for i, (text, label, item) in enumerate(zip(SPAM_TEXTS, SPAM_LABELS, dataset["items"], strict=True)):
        ids = tokenizer.encode(text)[:max_length]
        expected = torch.tensor(ids + [pad_token_id] * (max_length - len(ids)))
        expect(isinstance(item, list) and len(item) == 2, f"{what}[{i}] should be a pair (ids, label)")
        got_ids, got_label = item
        _expect_observed_tensor(got_ids, f"{what}[{i}]'s ids", dtype=torch.int64)
        if (
            got_ids.shape == expected.shape
            and torch.equal(got_ids[len(ids) :], torch.zeros_like(expected[len(ids) :]))
            and len(ids) < max_length
            and pad_token_id != 0
        ):
            fail(f"{what}[{i}] is padded with 0; pad with pad_token_id ({pad_token_id})")
        expect_equal_tensor(
            got_ids,
            expected,
            f"{what}[{i}]'s ids ({len(tokenizer.encode(text))} tokens of text, max_length {max_length})",
        )
        expect_equal_tensor(encoded_texts[i], expected, f"{what}.encoded_texts[{i}]")
        _expect_observed_tensor(got_label, f"{what}[{i}]'s label", shape=(), dtype=torch.int64)
        expect(int(got_label) == label, f"{what}[{i}]'s label is {int(got_label)}; the file says {label}")


def _longest_text(tokenizer) -> int:
    return max(len(tokenizer.encode(text)) for text in SPAM_TEXTS)


def _padded_datasets(sub, spam_csv, gpt2):
    dataset = sub.SpamDataset(spam_csv, gpt2, pad_token_id=7)
    return {
        "pad_7": _dataset_facts(dataset),
        "longest": dataset._longest_encoded_length(),
        "default_pad": _dataset_facts(sub.SpamDataset(str(spam_csv), gpt2)),
    }


@spam_data
@split(produce=_padded_datasets)
def test_spam_dataset_pads_to_the_longest_text(outputs, gpt2):
    """without max_length, every text is padded with pad_token_id to the longest one"""
    longest = _longest_text(gpt2)
    characters = max(len(text) for text in SPAM_TEXTS)
    if characters != longest and characters in (outputs["longest"], outputs["pad_7"]["max_length"]):
        fail(
            "SpamDataset's longest length counts the characters of the texts: count the tokens of the encoded "
            "texts, len(tokenizer.encode(text))"
        )
    _expect_dataset(outputs["pad_7"], gpt2, longest, 7, "SpamDataset(csv_file, tokenizer, pad_token_id=7)")
    expect(
        outputs["longest"] == longest,
        f"_longest_encoded_length() is {outputs['longest']}; the longest text has {longest} tokens",
    )
    _expect_dataset(
        outputs["default_pad"],
        gpt2,
        longest,
        50256,
        "SpamDataset(csv_file, tokenizer), the padding id left at its default,",
    )


def _max_lengths(tokenizer) -> tuple[int, int]:
    """A max_length shorter than most texts and one longer than every text."""
    return 5, _longest_text(tokenizer) + 3


def _cut_datasets(sub, spam_csv, gpt2):
    return [
        _dataset_facts(sub.SpamDataset(spam_csv, gpt2, max_length=max_length, pad_token_id=3))
        for max_length in _max_lengths(gpt2)
    ]


@spam_data
@split(produce=_cut_datasets)
def test_spam_dataset_truncates_and_pads_to_max_length(outputs, gpt2):
    """with max_length, longer texts are cut to their first max_length tokens, shorter ones padded to it"""
    max_lengths = _max_lengths(gpt2)
    expect_list(outputs, len(max_lengths), "the SpamDataset results")
    for dataset, max_length in zip(outputs, max_lengths, strict=True):
        _expect_dataset(dataset, gpt2, max_length, 3, f"SpamDataset(..., max_length={max_length}, pad_token_id=3)")


# ---------------------------------------------------------------- ch06.classifier_head

THREE_LAYERS = {**TINY_GPT, "n_layers": 3}


def _headed(sub, model: nn.Module, num_classes: int, seed: int = 7) -> dict:
    """Produce: add_classification_head(model, num_classes) after torch.manual_seed(seed), which changes `model`;
    what it returned: {"same": whether `model` itself, "type": its type's name, "module": whether an nn.Module}."""
    torch.manual_seed(seed)
    result = sub.add_classification_head(model, num_classes=num_classes)
    return {"same": result is model, "type": type(result).__name__, "module": isinstance(result, nn.Module)}


def _expect_returned_the_model(returned: dict) -> None:
    """Compare: add_classification_head returned the model it changed (`_headed`)."""
    expect(
        returned["same"] is True,
        "add_classification_head should change the model in place and return it; "
        f"it returned {returned['type']}" + (" (a different object)" if returned["module"] is True else ""),
    )


def _requires_grad(model: nn.Module) -> dict[str, bool]:
    """Produce: each parameter's requires_grad flag, by name."""
    return {name: param.requires_grad for name, param in model.named_parameters()}


def _gradient_sums(model: nn.Module) -> dict[str, float | None]:
    """Produce: the absolute sum of each parameter's gradient, by name (None where no gradient reached it)."""
    return {
        name: None if param.grad is None else param.grad.abs().sum().item() for name, param in model.named_parameters()
    }


def _expect_trainable(flags: dict, base: nn.Module, what: str) -> None:
    """Compare: in `flags` (`_requires_grad` of `base` after add_classification_head) only out_head, the last
    transformer block and final_norm train, and every parameter of `base` outside out_head is there."""
    expect_type(flags, dict, f"{what}: the requires_grad flags")
    expected = {*trainable_names(base), *(name for name in flags if name.startswith("out_head."))}
    for name, requires_grad in flags.items():
        if requires_grad is True and name not in expected:
            fail(
                f"{what}: {name} is still trainable; freeze every parameter except those of out_head, the last "
                "transformer block and final_norm"
            )
        if requires_grad is not True and name in expected:
            part = (
                "the new out_head"
                if name.startswith("out_head")
                else ("final_norm" if name.startswith("final_norm") else "the last transformer block")
            )
            fail(f"{what}: {name} is frozen; {part} must train (requires_grad=True)")
    for name, _ in base.named_parameters():
        if not name.startswith("out_head.") and name not in flags:
            fail(f"{what}: the model lost its parameter {name}")


HEAD_CLASSES = (2, 3)


def _head_ids() -> torch.Tensor:
    """(2, 5) token ids."""
    return torch.randint(0, TINY_GPT["vocab_size"], (2, 5), generator=torch.Generator().manual_seed(0))


def _heads_and_logits(sub):
    results = []
    for num_classes in HEAD_CLASSES:
        model = tiny_gpt(3)
        returned = _headed(sub, model, num_classes)
        head = model.out_head
        linear = isinstance(head, nn.Linear)
        with torch.no_grad():
            logits = model.eval()(_head_ids())
        results.append(
            {
                "returned": returned,
                "head_type": type(head).__name__,
                "is_linear": linear,
                "features": [head.in_features, head.out_features] if linear else None,
                "has_bias": linear and head.bias is not None,
                "logits": logits,
            }
        )
    return results


@classifier_head
@split(produce=_heads_and_logits)
def test_head_maps_to_num_classes(outputs):
    """out_head becomes nn.Linear(emb_dim, num_classes) with a bias: the model gives num_classes logits per token"""
    expect_list(outputs, len(HEAD_CLASSES), "the add_classification_head results")
    for num_classes, got in zip(HEAD_CLASSES, outputs, strict=True):
        _expect_returned_the_model(got["returned"])
        expect(got["is_linear"] is True, f"out_head is a {got['head_type']}; expected an nn.Linear")
        in_features, out_features = got["features"]
        expect(
            (in_features, out_features) == (TINY_GPT["emb_dim"], num_classes),
            f"with num_classes={num_classes} out_head maps {in_features} -> {out_features} features; "
            f"expected emb_dim {TINY_GPT['emb_dim']} -> {num_classes}",
        )
        expect(got["has_bias"] is True, "out_head has no bias; nn.Linear(emb_dim, num_classes) has one by default")
        expect_tensor(
            got["logits"], f"the classifier's logits with num_classes={num_classes}", shape=(2, 5, num_classes)
        )


def _three_layer_gpt() -> nn.Module:
    return tiny_gpt(4, THREE_LAYERS)


def _trainable_and_gradients(sub):
    model = _three_layer_gpt()
    returned = _headed(sub, model, 2)
    flags = _requires_grad(model)
    ids = torch.randint(0, TINY_GPT["vocab_size"], (3, 6), generator=torch.Generator().manual_seed(1))
    loss = F.cross_entropy(model(ids)[:, -1, :], torch.tensor([0, 1, 1]))
    if loss.requires_grad:
        loss.backward()
    return {"returned": returned, "requires_grad": flags, "gradients": _gradient_sums(model)}


@classifier_head
@split(produce=_trainable_and_gradients)
def test_only_the_head_last_block_and_final_norm_train(outputs):
    """every parameter frozen except those of out_head, the last transformer block and final_norm, and gradients follow"""
    _expect_returned_the_model(outputs["returned"])
    flags = outputs["requires_grad"]
    _expect_trainable(flags, _three_layer_gpt(), "after add_classification_head")
    for name, requires_grad in flags.items():
        if requires_grad is True:
            got = outputs["gradients"].get(name)
            expect(isinstance(got, float) and got > 0, f"no gradient reaches {name}")


HEAD_SEEDS = (7, 2024)


def _seeded_heads(sub):
    results = []
    for seed in HEAD_SEEDS:
        model = tiny_gpt(5)
        returned = _headed(sub, model, 2, seed=seed)
        results.append({"returned": returned, **{name: getattr(model.out_head, name) for name in ("weight", "bias")}})
    return results


@classifier_head
@split(produce=_seeded_heads)
def test_head_comes_from_the_global_generator(outputs):
    """after torch.manual_seed(s) the new head is nn.Linear's default draw: no seed of its own inside"""
    expect_list(outputs, len(HEAD_SEEDS), "the add_classification_head results")
    for seed, got in zip(HEAD_SEEDS, outputs, strict=True):
        _expect_returned_the_model(got["returned"])
        torch.manual_seed(seed)
        expected = nn.Linear(TINY_GPT["emb_dim"], 2)
        for name in ("weight", "bias"):
            if not torch.allclose(got[name], getattr(expected, name)):
                fail(
                    f"after torch.manual_seed({seed}), out_head.{name} is not what nn.Linear(emb_dim, num_classes) "
                    "draws: create the head with nn.Linear's own initialisation and do not seed inside the function"
                )


def _llama_classifier(sub):
    model = LlamaLayout()
    returned = _headed(sub, model, 2)
    with torch.no_grad():
        logits = model.eval()(torch.tensor([[1, 2, 3]]))
    return {"returned": returned, "logits": logits, "requires_grad": _requires_grad(model)}


@classifier_head
@split(produce=_llama_classifier)
def test_head_works_for_a_llama(outputs):
    """a Llama3Model (no pos_emb, out_head without bias) becomes a classifier too: emb_dim is out_head.in_features"""
    _expect_returned_the_model(outputs["returned"])
    expect_tensor(outputs["logits"], "a Llama3Model classifier's logits", shape=(1, 3, 2))
    _expect_trainable(outputs["requires_grad"], LlamaLayout(), "add_classification_head on a Llama3Model")


# ---------------------------------------------------------------- ch06.accuracy_and_loss


def _loss_case(seed: int, num_classes: int = 2):
    """A tiny classifier, (4, 6) token ids and their (4,) labels."""
    generator = torch.Generator().manual_seed(seed)
    model = tiny_classifier(seed, num_classes)
    inputs = torch.randint(0, TINY_GPT["vocab_size"], (4, 6), generator=generator)
    return model, inputs, torch.tensor([0, 1, num_classes - 1, 0])


LOSS_CASES = ((3, 2), (4, 3))  # (seed, num_classes)


def _batch_losses(sub):
    results = []
    for seed, num_classes in LOSS_CASES:
        model, inputs, labels = _loss_case(seed, num_classes)
        results.append(_observed(sub.calc_loss_batch(inputs, labels, model, "cpu"), torch.Tensor))
    return results


@accuracy_and_loss
@split(produce=_batch_losses)
def test_calc_loss_batch_is_the_last_tokens_cross_entropy(outputs):
    """the cross-entropy of the last token's raw logits against the labels"""
    expect_list(outputs, len(LOSS_CASES), "the calc_loss_batch results")
    for (seed, num_classes), result in zip(LOSS_CASES, outputs, strict=True):
        _expect_observed_tensor(result, "calc_loss_batch(...)")
        expect(result.numel() == 1, f"calc_loss_batch should return one number; got shape {tuple(result.shape)}")
        got = result.reshape(())
        model, inputs, labels = _loss_case(seed, num_classes)
        with torch.no_grad():
            logits = model(inputs)
        expected = F.cross_entropy(logits[:, -1, :], labels)
        mistakes = [
            (
                "the first token's logits: read the last position, logits[:, -1, :], the only one that saw the whole text",
                F.cross_entropy(logits[:, 0, :], labels),
            ),
            (
                "the loss of every position: only the last one classifies the text",
                F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(logits.shape[1])),
            ),
            (
                "the cross-entropy of probabilities: cross_entropy applies the softmax itself, give it the raw logits",
                F.cross_entropy(torch.softmax(logits[:, -1, :], dim=-1), labels),
            ),
            ("a sum over the batch instead of the mean", F.cross_entropy(logits[:, -1, :], labels, reduction="sum")),
        ]
        for description, value in mistakes:
            if torch.isclose(got, value, atol=1e-5) and not torch.isclose(got, expected, atol=1e-5):
                fail(f"calc_loss_batch computes {description}")
        expect_close(got, expected, f"calc_loss_batch(...) with {num_classes} classes", atol=1e-5)


def _loss_gradients(sub):
    model, inputs, labels = _loss_case(5)
    result = sub.calc_loss_batch(inputs, labels, model, torch.device("cpu"))
    has_graph = isinstance(result, torch.Tensor) and result.requires_grad
    if has_graph:
        result.backward()
    return {"has_graph": has_graph, "gradients": _gradient_sums(model)}


@accuracy_and_loss
@split(produce=_loss_gradients)
def test_calc_loss_batch_backpropagates_into_the_trainable_parameters(outputs):
    """the loss keeps its graph: backward() reaches the head, the last block and the final norm"""
    expect(
        outputs["has_graph"] is True,
        "calc_loss_batch's result has no gradient graph: return the tensor, not .item(), and do not use no_grad",
    )
    model, _, _ = _loss_case(5)
    for name in trainable_names(model):
        got = outputs["gradients"].get(name)
        expect(isinstance(got, float) and got > 0, f"after backward() {name} got no gradient")


def _loader_losses(model, loader) -> list[float]:
    with torch.no_grad():
        return [float(F.cross_entropy(model(x)[:, -1, :], y)) for x, y in loader]


def _loss_loader_case():
    """A tiny classifier and a loader of 5 batches of 2 examples."""
    return tiny_classifier(6), labelled_batches(10, 2, torch.Generator().manual_seed(6))


LOSS_NUM_BATCHES = (None, 2, 9)


def _loader_loss_results(sub):
    model, loader = _loss_loader_case()
    results = [sub.calc_loss_loader(loader, model, "cpu", num_batches=num_batches) for num_batches in LOSS_NUM_BATCHES]
    try:
        empty, divided_by_zero = _observed(sub.calc_loss_loader([], model, "cpu"), NUMBER_TYPES), False
    except ZeroDivisionError:
        empty, divided_by_zero = None, True
    return {
        "losses": [_observed(result, NUMBER_TYPES) for result in results],
        "tensors": [isinstance(result, torch.Tensor) for result in results],
        "empty": empty,
        "empty_divided_by_zero": divided_by_zero,
    }


@accuracy_and_loss
@split(produce=_loader_loss_results)
def test_calc_loss_loader_averages_the_first_num_batches(outputs):
    """the mean of the first num_batches batch losses as a float; None or too many means every batch; empty gives nan"""
    losses = _loader_losses(*_loss_loader_case())
    expected_means = (sum(losses) / 5, sum(losses[:2]) / 2, sum(losses) / 5)
    expect_list(outputs["losses"], len(LOSS_NUM_BATCHES), "the calc_loss_loader results")
    expect(
        not any(outputs["tensors"]),
        "calc_loss_loader returned a tensor; return a float: add up the batch losses as numbers "
        "(calc_loss_batch(...).item()), so that no gradient graph is kept",
    )
    for num_batches, expected, result in zip(LOSS_NUM_BATCHES, expected_means, outputs["losses"], strict=True):
        got = _observed_number(result, f"calc_loss_loader(..., num_batches={num_batches})")
        if num_batches == 2 and math.isclose(got, sum(losses) / 5, rel_tol=1e-5):
            fail("calc_loss_loader(..., num_batches=2) averaged every batch: stop after num_batches batches")
        if num_batches == 9 and math.isclose(got, sum(losses) / 9, rel_tol=1e-5):
            fail(
                "calc_loss_loader(..., num_batches=9) on a 5-batch loader divided by 9: use min(num_batches, len(data_loader))"
            )
        expect(
            math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-6),
            f"calc_loss_loader(..., num_batches={num_batches}) over 5 batches gave {got:.6f}; expected {expected:.6f}",
        )
    if outputs["empty_divided_by_zero"] is not False:
        fail("calc_loss_loader([], ...) divided by zero: return float('nan') for an empty loader")
    expect(
        math.isnan(_observed_number(outputs["empty"], "calc_loss_loader([], ...)")),
        "calc_loss_loader([], ...) should be nan",
    )


def _uneven_loss_case():
    """A tiny classifier and a loader of batches of 3, 3 and 1 examples whose mean batch loss is far from
    the mean loss per example."""
    return tiny_classifier(9), labelled_batches(7, 3, torch.Generator().manual_seed(9))


def _uneven_loader_losses(sub):
    model, loader = _uneven_loss_case()
    return [
        _observed(sub.calc_loss_loader(loader, model, "cpu", num_batches=num_batches), NUMBER_TYPES)
        for num_batches in (None, 3)
    ]


@accuracy_and_loss
@split(produce=_uneven_loader_losses)
def test_calc_loss_loader_averages_batch_losses_when_the_last_batch_is_smaller(outputs):
    """every batch's loss counts once, the smaller last batch's too: the mean of the batch losses"""
    model, loader = _uneven_loss_case()
    losses = _loader_losses(model, loader)
    sizes = [len(y) for _, y in loader]
    per_example = sum(loss * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes)
    expect_list(outputs, 2, "the calc_loss_loader results")
    for num_batches, result in zip((None, 3), outputs, strict=True):
        got = _observed_number(result, f"calc_loss_loader(..., num_batches={num_batches})")
        if math.isclose(got, sum(losses[:2]) / 2, rel_tol=1e-5):
            fail(
                f"calc_loss_loader(..., num_batches={num_batches}) skipped the smaller last batch of a loader of "
                "batches of 3, 3 and 1 examples: use every batch of the loader, len(data_loader) batches"
            )
        if math.isclose(got, per_example, rel_tol=1e-5):
            fail(
                "calc_loss_loader weighs each batch's loss by its number of examples: over batches of 3, 3 and 1 "
                "examples it should be the mean of the batch losses, each calc_loss_batch counting once"
            )
        expect(
            math.isclose(got, sum(losses) / 3, rel_tol=1e-5, abs_tol=1e-6),
            f"calc_loss_loader(..., num_batches={num_batches}) over batches of 3, 3 and 1 examples gave {got:.6f}; "
            f"expected {sum(losses) / 3:.6f}, the mean of the 3 batch losses",
        )


def _disagreeing_inputs(model: nn.Module, count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """count inputs whose first and last tokens' logits pick different classes, with the last token's picks."""
    generator = torch.Generator().manual_seed(seed)
    candidates = torch.randint(0, TINY_GPT["vocab_size"], (20 * count, 6), generator=generator)
    with torch.no_grad():
        logits = model(candidates)
    first, last = logits[:, 0, :].argmax(-1), logits[:, -1, :].argmax(-1)
    chosen = (first != last).nonzero().flatten()[:count]
    assert len(chosen) == count, "too few candidates whose first and last tokens disagree"
    return candidates[chosen], last[chosen]


# (right, size) per batch of `_accuracy_case`'s loader: 3 of 3, 0 of 3, 1 of 1.
RIGHT_PER_BATCH = ((3, 3), (0, 3), (1, 1))


def _accuracy_case(seed: int = 9) -> tuple[nn.Module, DataLoader]:
    """A model and a loader of batches of 3, 3 and 1 examples, as many right as RIGHT_PER_BATCH says."""
    model = tiny_classifier(seed).eval()
    inputs, predicted = _disagreeing_inputs(model, 7, seed)
    labels = predicted.clone()
    labels[3:6] = 1 - labels[3:6]
    return model, DataLoader(TensorDataset(inputs, labels), batch_size=3, shuffle=False)


ACCURACY_NUM_BATCHES = (None, 2, 1, 10)


def _accuracies(sub):
    model, loader = _accuracy_case()
    return [
        _observed(sub.calc_accuracy_loader(loader, model, "cpu", num_batches=num_batches), NUMBER_TYPES)
        for num_batches in ACCURACY_NUM_BATCHES
    ]


@accuracy_and_loss
@split(produce=_accuracies)
def test_calc_accuracy_loader_counts_right_examples(outputs):
    """the share of examples whose last-token argmax is the label, over the first num_batches batches"""
    expect_list(outputs, len(ACCURACY_NUM_BATCHES), "the calc_accuracy_loader results")
    for num_batches, result in zip(ACCURACY_NUM_BATCHES, outputs, strict=True):
        used = RIGHT_PER_BATCH[: num_batches or len(RIGHT_PER_BATCH)]
        expected = sum(right for right, _ in used) / sum(size for _, size in used)
        got = _observed_number(result, f"calc_accuracy_loader(..., num_batches={num_batches})")
        if math.isclose(got, 1 - expected) and not math.isclose(expected, 0.5):
            fail(
                "calc_accuracy_loader counts the wrong predictions: its classes come from another token than the "
                "last one, logits[:, -1, :]"
            )
        if num_batches is None and math.isclose(got, sum(r / s for r, s in RIGHT_PER_BATCH) / len(RIGHT_PER_BATCH)):
            fail(
                "calc_accuracy_loader averages the batches' accuracies; count the right examples over all examples "
                "(a batch of 1 weighs less than a batch of 3)"
            )
        without_last = RIGHT_PER_BATCH[:-1]
        if num_batches is None and math.isclose(
            got, sum(right for right, _ in without_last) / sum(size for _, size in without_last)
        ):
            fail(
                "calc_accuracy_loader(..., num_batches=None) skipped the smaller last batch: use every batch of the "
                "loader, len(data_loader) batches"
            )
        if num_batches is None and math.isclose(got, sum(right for right, _ in used) / (3 * len(used))):
            fail(
                "calc_accuracy_loader counts every batch as batch_size examples, but the last batch holds fewer: "
                "count the examples of each batch (predicted_labels.shape[0])"
            )
        expect(
            math.isclose(got, expected, abs_tol=1e-6),
            f"calc_accuracy_loader(..., num_batches={num_batches}) over "
            f"batches of 3, 3 and 1 examples gave {got:.4f}; expected {expected:.4f}",
        )


def _accuracy_forward_calls(sub):
    """The (training, grad_enabled, input shape) of every forward call of calc_accuracy_loader on a training model."""
    model, loader = _accuracy_case(11)
    log = ForwardLog(model.train())
    sub.calc_accuracy_loader(loader, model, "cpu")
    return log.calls


@accuracy_and_loss
@split(produce=_accuracy_forward_calls)
def test_calc_accuracy_loader_evaluates_in_eval_mode_without_gradients(outputs):
    """every forward call of calc_accuracy_loader runs in eval mode under no_grad, even when the model was training"""
    expect(outputs, "calc_accuracy_loader never called the model")
    expect(
        all(not training for training, _, _ in outputs),
        "calc_accuracy_loader ran the model in train mode: call model.eval() first, so dropout is off while measuring",
    )
    expect(
        all(not grad for _, grad, _ in outputs),
        "calc_accuracy_loader ran the model with gradients on: wrap the forward passes in torch.no_grad()",
    )


# ---------------------------------------------------------------- ch06.train_classifier


def _train(function, run: ClassifierRun, **settings) -> tuple[object, StepLog, ForwardLog]:
    log, forward_log = StepLog(run), ForwardLog(run.model)
    with contextlib.redirect_stdout(io.StringIO()):
        results = function(run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **settings)
    return results, log, forward_log


def _results_facts(results) -> dict:
    """Produce: train_classifier_simple's result as data: its type's name, its length where it is a tuple or
    list, and where that is 5, its four lists of numbers and examples_seen (`_observed`)."""
    facts = {"type": type(results).__name__, "length": None, "curves": None, "examples_seen": None}
    if isinstance(results, (tuple, list)):
        facts["length"] = len(results)
        if len(results) == 5:
            *curves, examples_seen = results
            facts["curves"] = [[_observed(v, NUMBER_TYPES) for v in values] for values in curves]
            facts["examples_seen"] = _observed(examples_seen, NUMBER_TYPES)
    return facts


def _expect_results(facts: dict, what: str) -> tuple[list[list[float]], int]:
    """Compare: the four lists of numbers and examples_seen of `_results_facts`."""
    expect(
        facts["length"] == 5,
        f"{what} should return (train_losses, val_losses, "
        f"train_accs, val_accs, examples_seen); got {facts['type']}"
        + (f" of length {facts['length']}" if facts["length"] is not None else ""),
    )
    expect_list(facts["curves"], 4, f"{what}'s lists")
    return (
        [[_observed_number(v, f"an entry of {what}'s lists") for v in values] for values in facts["curves"]],
        int(_observed_number(facts["examples_seen"], f"{what}'s examples_seen")),
    )


def _reference_run(sub, recorded):
    case = recorded["train"]
    run = classifier_run(seed=case["seed"])
    settings = {k: case[k] for k in ("num_epochs", "eval_freq", "eval_iter")}
    results, log, _ = _train(sub.train_classifier_simple, run, **settings)
    return {"results": _results_facts(results), "grad_norms": log.grad_norms, "state": parameter_state(run.model)}


@train_classifier
@split(produce=_reference_run)
def test_train_classifier_simple_reproduces_the_reference_run(outputs, recorded):
    """same evaluations, accuracies, examples seen, gradients and final weights as the reference's run"""
    case = recorded["train"]
    run = classifier_run(seed=case["seed"])
    curves, examples_seen = _expect_results(outputs["results"], "train_classifier_simple")
    grad_norms = outputs["grad_norms"]
    steps = len(case["grad_norms"])
    expect(
        isinstance(grad_norms, list) and len(grad_norms) == steps,
        f"train_classifier_simple made {len(grad_norms)} optimizer steps; expected "
        f"{steps} ({len(run.train_loader)} batches per epoch, {case['num_epochs']} epochs)",
    )
    batch, tokens = run.train_loader.batch_size, run.train_loader.dataset[0][0].numel()
    if examples_seen == case["examples_seen"] * tokens:
        fail(f"examples_seen is {examples_seen}: it counts tokens; count the examples, input_batch.shape[0] per batch")
    expect(
        examples_seen == case["examples_seen"],
        f"examples_seen is {examples_seen}; expected {case['examples_seen']} ({steps} batches of {batch} examples)",
    )
    names = ("training losses", "validation losses", "training accuracies", "validation accuracies")
    per_epoch_steps = case["num_epochs"] * len(range(0, len(run.train_loader), case["eval_freq"]))
    for values, expected, name in zip(curves, case["curves"], names, strict=True):
        if len(values) != len(expected) and "losses" in name and len(values) == per_epoch_steps:
            fail(
                f"train_classifier_simple returned {len(values)} {name}; expected {len(expected)}: its step number "
                "restarts every epoch; number the steps from 0 across all epochs (a multiple of "
                f"eval_freq={case['eval_freq']} is evaluated)"
            )
        if len(values) != len(expected):
            rule = (
                f"one per epoch ({case['num_epochs']})"
                if "accuracies" in name
                else f"after every step whose number, counted from 0 over all epochs, is a multiple of eval_freq={case['eval_freq']}"
            )
            fail(f"train_classifier_simple returned {len(values)} {name}; expected {len(expected)}: {rule}")
    for step, (norm, expected_norm) in enumerate(zip(grad_norms, case["grad_norms"], strict=True)):
        if not math.isclose(norm, expected_norm, rel_tol=1e-3, abs_tol=1e-6):
            hint = (
                " (step 0 agrees: do earlier gradients pile up? call optimizer.zero_grad() before each backward)"
                if step > 0 and norm > expected_norm
                else ""
            )
            fail(
                f"train_classifier_simple: the gradient norm at step {step} is {norm:.5g}; the reference run's is "
                f"{expected_norm:.5g}{hint}"
            )
    for values, expected, name in zip(curves, case["curves"], names, strict=True):
        expect_close(
            torch.tensor(values), torch.tensor(expected), f"train_classifier_simple's {name}", atol=TOL, rtol=TOL
        )
    for name in trained_parameter_state(run.model):
        expect_close(
            outputs["state"].get(name),
            case["state"][name],
            f"the model's {name} after train_classifier_simple",
            atol=TOL,
            rtol=TOL,
        )


def _lowering_run() -> ClassifierRun:
    return classifier_run(seed=11, lr=0.05)


def _trained_weights(sub):
    run = _lowering_run()
    _train(sub.train_classifier_simple, run, num_epochs=3, eval_freq=100, eval_iter=1)
    return parameter_state(run.model)


@train_classifier
@split(produce=_trained_weights)
def test_train_classifier_simple_lowers_the_loss(outputs):
    """three epochs on a few fixed batches lower the training loss"""
    run = _lowering_run()
    before = sum(_loader_losses(run.model, run.train_loader))
    load_parameters(run.model, outputs, "the model after train_classifier_simple")
    after = sum(_loader_losses(run.model, run.train_loader))
    expect(
        after < before * 0.9,
        f"after 3 epochs the training loss went from {before / 5:.3f} to {after / 5:.3f}; "
        "the optimizer steps should lower it",
    )


class EventLog:
    """Logs a run's forward calls and optimizer steps in their order, from outside the submission:
    ("forward", training, grad_enabled) per forward call, ("step", False, False) per optimizer step."""

    def __init__(self, run: ClassifierRun):
        self.events: list[tuple[str, bool, bool]] = []
        run.model.register_forward_pre_hook(self._before_forward)
        run.optimizer.register_step_post_hook(self._after_step)

    def _before_forward(self, module: nn.Module, args: tuple) -> None:
        self.events.append(("forward", module.training, torch.is_grad_enabled()))

    def _after_step(self, optimizer, args, kwargs) -> None:
        self.events.append(("step", False, False))


def mode_problem(events: list, batches_per_epoch: int, eval_freq: int) -> str | None:
    """Compare: what is wrong with the modes of an `EventLog` of train_classifier_simple; None when nothing is.

    The last forward call before each optimizer step is that step's training call; the others evaluate.
    Between step s (from 0) and the next one come evaluate_model's calls when s is a multiple of eval_freq
    and the accuracies' when s ends an epoch.
    """
    expect(isinstance(events, list), "train_classifier_simple: the log of its forward calls is missing")
    steps, pending, losses_checked = 0, [], False
    for kind, training, grad in [*events, ("end", False, False)]:
        if kind == "forward":
            pending.append((training, grad))
            continue
        evaluations = pending if kind == "end" else pending[:-1]
        after_evaluation = steps > 0 and (steps - 1) % eval_freq == 0
        after_epoch = steps > 0 and steps % batches_per_epoch == 0
        for eval_training, eval_grad in evaluations:
            if eval_training:
                return (
                    "train_classifier_simple measured losses or accuracies in train mode: evaluate with model.eval() "
                    "(evaluate_model and calc_accuracy_loader switch to eval mode)"
                )
            if eval_grad and after_epoch and (losses_checked or not after_evaluation):
                return (
                    "train_classifier_simple measured the accuracies with gradients on: calc_accuracy_loader runs "
                    "the model under torch.no_grad()"
                )
            if eval_grad:
                return (
                    "train_classifier_simple evaluated the model with gradients on: evaluate_model computes "
                    "its losses under torch.no_grad()"
                )
        # evaluate_model's calls alone came before this step, all without gradients
        losses_checked = losses_checked or (after_evaluation and not after_epoch and bool(evaluations))
        if kind == "step":
            if not pending:
                return f"train_classifier_simple made optimizer step {steps} without a forward pass before it"
            training, grad = pending[-1]
            if not grad:
                return f"train_classifier_simple computed the loss of step {steps} without gradients"
            if not training:
                if after_epoch:
                    return (
                        "train_classifier_simple trained in eval mode from the second epoch on: calc_accuracy_loader "
                        "leaves the model in eval mode, so call model.train() at the start of every epoch"
                    )
                if evaluations and after_evaluation:
                    return (
                        "train_classifier_simple trained in eval mode after evaluating: evaluate_model must put the "
                        "model back in train mode (model.train()) before it returns"
                    )
                return f"train_classifier_simple trained step {steps} in eval mode: train with model.train()"
            steps += 1
        pending = []
    if steps == 0:
        return "train_classifier_simple never made an optimizer step"
    if not any(kind == "forward" and not grad for kind, _, grad in events):
        return "train_classifier_simple never evaluated the model without gradients"
    return None


MODE_RUN = {
    "num_epochs": 2,
    "eval_freq": 2,
    "eval_iter": 1,
}  # 5 batches per epoch: evaluations after steps 0, 2, 4, ...


def _training_events(sub):
    """The forward calls and optimizer steps of a train_classifier_simple run (`EventLog`)."""
    run = classifier_run(seed=12)
    log = EventLog(run)
    _train(sub.train_classifier_simple, run, **MODE_RUN)
    return log.events


@train_classifier
@split(produce=_training_events)
def test_train_classifier_simple_trains_in_train_mode_and_measures_in_eval_mode(outputs):
    """every training step runs in train mode (after evaluations too), every evaluation in eval mode without gradients"""
    problem = mode_problem(outputs, len(classifier_run(seed=12).train_loader), MODE_RUN["eval_freq"])
    if problem is not None:
        fail(problem)


def _evaluation_run() -> ClassifierRun:
    return classifier_run(seed=13)


def _evaluation(sub):
    run = _evaluation_run()
    forward_log = ForwardLog(run.model.train())
    result = sub.evaluate_model(run.model, run.train_loader, run.val_loader, "cpu", eval_iter=2)
    return {
        "result": [_observed(value, NUMBER_TYPES) for value in result] if isinstance(result, (tuple, list)) else None,
        "calls": forward_log.calls,
        "training_after": run.model.training,
    }


@train_classifier
@split(produce=_evaluation)
def test_evaluate_model_measures_both_losses_in_eval_mode(outputs):
    """(train_loss, val_loss) over eval_iter batches each, in eval mode without gradients, the model back in train mode"""
    run = _evaluation_run()
    expected = [
        sum(losses[:2]) / 2
        for losses in (_loader_losses(run.model, run.train_loader), _loader_losses(run.model, run.val_loader))
    ]
    result = outputs["result"]
    expect(isinstance(result, list) and len(result) == 2, "evaluate_model should return (train_loss, val_loss)")
    for value, wanted, name in zip(result, expected, ("train_loss", "val_loss"), strict=True):
        got = _observed_number(value, f"evaluate_model's {name}")
        expect(
            math.isclose(got, wanted, rel_tol=1e-5),
            f"evaluate_model's {name} with eval_iter=2 is {got:.6f}; "
            f"expected {wanted:.6f}, the mean loss of the first 2 batches",
        )
    expect(outputs["calls"], "evaluate_model never called the model")
    expect(
        all(not training for training, _, _ in outputs["calls"]),
        "evaluate_model ran the model in train mode: call model.eval() before measuring the losses",
    )
    expect(
        all(not grad for _, grad, _ in outputs["calls"]),
        "evaluate_model ran the model with gradients on: compute the losses under torch.no_grad()",
    )
    expect(
        outputs["training_after"] is True,
        "evaluate_model left the model in eval mode; call model.train() before returning",
    )


# ---------------------------------------------------------------- ch06.classify_review

# One id per character; s, p, a and m vote spam. Id 0 ("x") votes ham, so padding with 0 shows.
VOTE_ALPHABET = "xyzspamh"
PAD = VOTE_ALPHABET.index("p")
# The public vote models, one laid out as a GPTModel and one as a Llama3Model. Their context
# lengths, embedding widths and the vocabulary (8) all differ, so a context read from the wrong
# place shows in the number of tokens the model is given.
GPT_VOTE = {"alphabet": VOTE_ALPHABET, "spam": "spam", "context": 9, "emb_dim": 3, "llama": False}
LLAMA_VOTE = {**GPT_VOTE, "context": 6, "emb_dim": 4, "llama": True}


class VoteClassifier(nn.Module):
    """A two-class classifier whose logits at every position are the vote of the token there.

    Token ids (batch, num_tokens) -> logits (batch, num_tokens, 2), (0, 5) where the token
    votes spam and (5, 0) elsewhere, so the class read at a position says which token sits
    there. Laid out as a GPTModel (`tok_emb`, and `pos_emb` with one row per position of the
    context), or with llama=True as a Llama3Model (`tok_emb`, no `pos_emb`, the context in
    `cfg["context_length"]`). Ids outside the vocabulary or more tokens than the context fail
    the check with a message, where a real model would raise an IndexError or attend past its
    context. Every call is logged in `calls` as (training, grad_enabled, input shape), and its
    input in `inputs`.
    """

    def __init__(self, spam_votes: list[bool], context_length: int, emb_dim: int, llama: bool = False):
        super().__init__()
        self.register_buffer("votes", torch.tensor(spam_votes, dtype=torch.long))
        self.tok_emb = nn.Embedding(len(spam_votes), emb_dim)
        if llama:
            self.cfg = {"vocab_size": len(spam_votes), "context_length": context_length, "emb_dim": emb_dim}
        else:
            self.pos_emb = nn.Embedding(context_length, emb_dim)
        self.context = context_length
        self.calls: list[tuple[bool, bool, tuple[int, ...]]] = []
        self.inputs: list[torch.Tensor] = []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: (batch, num_tokens) int64 -> (batch, num_tokens, 2) float logits."""
        if not isinstance(idx, torch.Tensor):
            fail(f"the model was called with a {type(idx).__name__}; it takes a (batch, num_tokens) tensor of ids")
        self.calls.append((self.training, torch.is_grad_enabled(), tuple(idx.shape)))
        self.inputs.append(idx.detach().to("cpu").clone())
        expect_token_id_batch(idx, len(self.votes))
        if idx.shape[1] > self.context:
            fail(f"the model was given {idx.shape[1]} tokens but its context holds {self.context}")
        return 5.0 * nn.functional.one_hot(self.votes[idx.to(self.votes.device)], 2).float()


def vote_model(spec: dict) -> VoteClassifier:
    """The `VoteClassifier` of a spec (GPT_VOTE, LLAMA_VOTE or a hidden check's), in train mode."""
    votes = [char in spec["spam"] for char in spec["alphabet"]]
    return VoteClassifier(votes, spec["context"], spec["emb_dim"], llama=spec["llama"]).train()


def review(classify, spec: dict, text: str, max_length: int | None, pad_token_id: int = PAD) -> dict:
    """Produce: `classify` (a classify_review) of `text` on a fresh `vote_model(spec)`: {"label": its answer
    (`_observed`), "calls": the model's calls, each (training, grad_enabled, input shape), "inputs": the ids it
    was given, "refused": the model's message where it refused its input (token ids outside its vocabulary,
    more tokens than its context), "raised": the exception classify_review raised, as "Type: message"}.
    A refusal or an exception is data, so that the check fails on it in its turn, naming what went wrong."""
    model = vote_model(spec)
    facts = {"label": None, "calls": model.calls, "inputs": model.inputs, "refused": None, "raised": None}
    try:
        label = classify(
            text, model, CharTokenizer(spec["alphabet"]), "cpu", max_length=max_length, pad_token_id=pad_token_id
        )
    except CheckFailure as refusal:
        facts["refused"] = str(refusal)
    except NotImplementedError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        facts["raised"] = f"{type(exc).__name__}: {exc}"
    else:
        facts["label"] = _observed(label, str)
    return facts


def _layout(spec: dict) -> str:
    return "Llama3Model-like" if spec["llama"] else "GPTModel-like"


def _context_source(spec: dict) -> str:
    return 'model.cfg["context_length"]' if spec["llama"] else "model.pos_emb.weight.shape[0]"


def raised_problem(raised: str, spec: dict, max_length: int | None) -> str:
    """Compare: what an exception of classify_review says is wrong, for a model of `spec`."""
    if spec["llama"] and raised.startswith("AttributeError") and "pos_emb" in raised:
        return (
            f"classify_review read model.pos_emb, which a Llama3Model does not have ({raised}): "
            'take its context length from model.cfg["context_length"]'
        )
    if not spec["llama"] and raised.startswith("AttributeError") and "cfg" in raised:
        return (
            f"classify_review read model.cfg, which a GPTModel does not have ({raised}): take its context length "
            "from its position embeddings, model.pos_emb.weight.shape[0]"
        )
    if _unlimited(max_length):
        return (
            f"classify_review(..., max_length=None) raised {raised}: with max_length=None cut the text to the "
            "model's context and do not pad it"
        )
    return f"classify_review raised {raised} on a {_layout(spec)} model with max_length={max_length}"


def _unlimited(max_length: int | None) -> bool:
    """Whether classify_review was called with max_length=None: cut to the context only, never padded."""
    return max_length is None


def expected_tokens(spec: dict, num_text_tokens: int, max_length: int | None) -> int:
    """How many tokens classify_review gives the model: min(max_length, context), or with max_length=None
    the text's tokens cut to the context."""
    if _unlimited(max_length):
        return min(num_text_tokens, spec["context"])
    return min(max_length, spec["context"])


def length_problem(got: int, spec: dict, num_text_tokens: int, max_length: int | None) -> str:
    """Compare: why the model was given `got` tokens and not `expected_tokens(...)`; no input's values in it."""
    expected = expected_tokens(spec, num_text_tokens, max_length)
    context, source = spec["context"], _context_source(spec)
    for size, name in ((spec["emb_dim"], "embedding width (emb_dim)"), (len(spec["alphabet"]), "vocabulary size")):
        as_context = {**spec, "context": size}
        if size != context and got == expected_tokens(as_context, num_text_tokens, max_length) != expected:
            where = (
                "the number of position-embedding rows, model.pos_emb.weight.shape[0]" if not spec["llama"] else source
            )
            return f"the context length was taken from the model's {name}; the context length is {where}"
    if got > context:
        if _unlimited(max_length):
            return f"the text was not cut to the model's context ({source}) when max_length is None"
        if got == max_length:
            return (
                "the text was padded or cut to max_length beyond the model's context: "
                f"use min(max_length, context), the context being {source}"
            )
        return f"the model was given more tokens than its context ({source}) holds"
    if max_length is None and got == context > num_text_tokens:
        return "with max_length=None the text was padded to the context: without max_length do not pad"
    if max_length is not None and got == min(num_text_tokens, expected) < expected:
        return "the text was not padded: pad it with pad_token_id to min(max_length, context) tokens"
    return (
        "truncate the ids to min(max_length, context) tokens and pad them to that length "
        "(with max_length=None only cut them to the context)"
    )


def _expect_one_input(facts: dict, spec: dict, text: str, max_length: int | None) -> None:
    """Compare: classify_review (a `review`) raised nothing and called the model once, with a (1, n) batch of
    the number of tokens the text says."""
    if facts["raised"] is not None:
        fail(raised_problem(facts["raised"], spec, max_length))
    shapes = [shape for _, _, shape in facts["calls"]]
    expected = expected_tokens(spec, len(text), max_length)
    what = f"classify_review of a {len(text)}-token text with max_length={max_length} on a {_layout(spec)} model"
    if len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][0] == 1 and shapes[0][1] != expected:
        context = spec["context"]
        fail(
            f"{what} (context {context}) gave the model {shapes[0][1]} tokens, expected {expected}: "
            + length_problem(shapes[0][1], spec, len(text), max_length)
        )
    expect(
        shapes == [(1, expected)],
        f"{what} called the model with inputs of shapes {shapes}; expected one (1, {expected}) batch",
    )
    if facts["refused"] is not None:
        fail(facts["refused"])


def _expect_label(facts: dict, text: str) -> str:
    """Compare: the answer of a `review` is "spam" or "not spam"; returns it."""
    if facts["refused"] is not None:
        fail(facts["refused"])
    label = facts["label"]
    expect(isinstance(label, str), f"classify_review({text!r}, ...) should be a str; got {_type_name(label)}")
    expect(label in ("spam", "not spam"), f'classify_review returned {label!r}; expected "spam" or "not spam"')
    return label


def _expect_reviews(outputs, cases, spec: dict, rule: str) -> None:
    """Compare: each `review` of (text, max_length, expected label) `cases` gave the model the right number of
    tokens and answered the expected label; `rule` says what decides the label."""
    expect_list(outputs, len(cases), "the classify_review results")
    for (text, max_length, expected), facts in zip(cases, outputs, strict=True):
        _expect_one_input(facts, spec, text, max_length)
        label = _expect_label(facts, text)
        expect(
            label == expected,
            f"classify_review of a {len(text)}-token text with max_length={max_length} on a {_layout(spec)} model "
            f"said {label!r}: {rule}",
        )


LAST_TOKEN_CASES = (("hams", 4, "spam"), ("shhh", 4, "not spam"), ("xyzp", 4, "spam"), ("sxxx", 4, "not spam"))


def _last_token_reviews(sub):
    return [review(sub.classify_review, GPT_VOTE, text, max_length) for text, max_length, _ in LAST_TOKEN_CASES]


@classify_review
@split(produce=_last_token_reviews)
def test_classify_review_reads_the_last_token(outputs):
    """the class of the last token decides, not the first one's"""
    _expect_reviews(
        outputs,
        LAST_TOKEN_CASES,
        GPT_VOTE,
        'its last token says otherwise: read the last token\'s logits, logits[:, -1, :], and map class 1 to "spam"',
    )


def _short_review(sub):
    return review(sub.classify_review, GPT_VOTE, "hh", max_length=5)


@classify_review
@split(produce=_short_review)
def test_classify_review_pads_with_pad_token_id_to_max_length(outputs):
    """a short text is padded with pad_token_id to exactly max_length tokens, so the last token is padding"""
    _expect_one_input(outputs, GPT_VOTE, "hh", 5)
    label = _expect_label(outputs, "hh")
    expect(
        label == "spam",
        "classify_review of a short text said 'not spam' where its padding token votes spam: pad with pad_token_id",
    )


TRUNCATION_CASES = (
    ("hhsphh", 4, "spam"),
    ("sssshh", 3, "spam"),
    ("hhhhhhhhs", 8, "not spam"),
    ("hhhhhhhhsh", 9, "spam"),
)


def _long_reviews(sub):
    return [review(sub.classify_review, GPT_VOTE, text, max_length) for text, max_length, _ in TRUNCATION_CASES]


@classify_review
@split(produce=_long_reviews)
def test_classify_review_truncates_to_max_length(outputs):
    """a long text is cut to its first max_length tokens, so the token at max_length - 1 decides"""
    _expect_reviews(outputs, TRUNCATION_CASES, GPT_VOTE, "keep the first max_length tokens")


def _spam_review(sub):
    return review(sub.classify_review, GPT_VOTE, "spam", max_length=6)


@classify_review
@split(produce=_spam_review)
def test_classify_review_runs_in_eval_mode_without_gradients(outputs):
    """the model runs in eval mode under no_grad, even when it was training"""
    _expect_one_input(outputs, GPT_VOTE, "spam", 6)
    _expect_label(outputs, "spam")
    expect(
        all(not training for training, _, _ in outputs["calls"]),
        "classify_review ran the model in train mode: call model.eval() first",
    )
    expect(
        all(not grad for _, grad, _ in outputs["calls"]),
        "classify_review ran the model with gradients on: use torch.no_grad()",
    )


# (text, max_length, label) on GPT_VOTE (context 9): without max_length a short text is neither padded
# (padding votes spam, its last token ham) nor cut, a long one cut to its first 9 tokens (its last 9 say ham).
NO_MAX_LENGTH_CASES = (("shh", None, "not spam"), ("hhhhhhhhsxxx", None, "spam"), ("hhhhhhhhs", None, "spam"))


def _unpadded_reviews(sub):
    return [review(sub.classify_review, GPT_VOTE, text, max_length) for text, max_length, _ in NO_MAX_LENGTH_CASES]


@classify_review
@split(produce=_unpadded_reviews)
def test_classify_review_without_max_length_only_cuts_to_the_context(outputs):
    """with max_length=None the text is cut to the model's context, pos_emb.weight.shape[0], and not padded"""
    _expect_reviews(
        outputs,
        NO_MAX_LENGTH_CASES,
        GPT_VOTE,
        "without max_length keep the first context tokens of the text, unpadded",
    )


# (text, max_length, label) on GPT_VOTE (context 9): a max_length above the context pads and cuts to the context.
ABOVE_CONTEXT_CASES = (("hh", 12, "spam"), ("hhhhhhhhshhh", 15, "spam"), ("shhhhhhhhs", 10, "not spam"))


def _capped_reviews(sub):
    return [review(sub.classify_review, GPT_VOTE, text, max_length) for text, max_length, _ in ABOVE_CONTEXT_CASES]


@classify_review
@split(produce=_capped_reviews)
def test_classify_review_caps_max_length_at_the_context(outputs):
    """a max_length above the context truncates and pads to the context, min(max_length, context) tokens"""
    _expect_reviews(
        outputs,
        ABOVE_CONTEXT_CASES,
        GPT_VOTE,
        "truncate and pad to min(max_length, context) tokens, the first ones of the text",
    )


# (text, max_length, label) on LLAMA_VOTE (no pos_emb, context 6 in cfg): every kind of length.
LLAMA_CASES = (
    ("hhhhhsxxx", None, "spam"),
    ("sh", None, "not spam"),
    ("hx", 10, "spam"),
    ("hhhhhsxx", 7, "spam"),
    ("sssshhhh", 5, "not spam"),
    ("hh", 3, "spam"),
)


def _llama_reviews(sub):
    return [review(sub.classify_review, LLAMA_VOTE, text, max_length) for text, max_length, _ in LLAMA_CASES]


@classify_review
@split(produce=_llama_reviews)
def test_classify_review_reads_a_llamas_context_from_its_config(outputs):
    """a Llama3Model has no pos_emb: its context is model.cfg["context_length"], and the same rules hold"""
    _expect_reviews(
        outputs,
        LLAMA_CASES,
        LLAMA_VOTE,
        'truncate and pad to min(max_length, context) tokens, the context being model.cfg["context_length"]',
    )
