"""Public checks of chapter 6: the spam data, the classification head, last-token loss and accuracy,
the fine-tuning loop and classifying a new message.

The data functions run on a small frame of messages recorded with the book's
seeds, and the dataset on a CSV file written by the check. The model pieces run
on a tiny GPTModel turned into a classifier (`classifier_setups`), so a whole
training run takes milliseconds and is compared with the reference's recorded
run. A forward hook logs the mode of every call from outside the submission, so
evaluation without eval()/no_grad shows. `classify_review` runs on a model whose
class at a position is the vote of the token there, so the answer tells which
token was read last.
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
    TokenVoteClassifier,
    classifier_run,
    labelled_batches,
    messages_frame,
    tiny_classifier,
    tiny_gpt,
    trainable_names,
)
from autograder.checks.modules import trained_parameter_state
from autograder.checks.toy_models import CharTokenizer
from autograder.checks.training_setups import StepLog
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_number,
    expect_tensor,
    expect_type,
    fail,
)

spam_data = pytest.mark.ch06_spam_data
classifier_head = pytest.mark.ch06_classifier_head
accuracy_and_loss = pytest.mark.ch06_accuracy_and_loss
train_classifier = pytest.mark.ch06_train_classifier
classify_review = pytest.mark.ch06_classify_review

# Losses and weights after a few float32 steps agree to ~1e-6 whichever way the sums are taken.
TOL = 1e-4


def _texts(part, what: str) -> list[str]:
    expect_type(part, pd.DataFrame, what)
    expect("Text" in part.columns, f"{what} has no 'Text' column (its columns: {list(part.columns)})")
    return part["Text"].tolist()


# ---------------------------------------------------------------- ch06.spam_data


@spam_data
def test_create_balanced_dataset_keeps_every_spam_and_as_many_ham(sub, recorded):
    """every spam row once, as many distinct ham rows, the columns kept and the input left as it was"""
    columns = recorded["messages"]
    df = messages_frame(columns)
    balanced = sub.create_balanced_dataset(df)
    expect(
        df.equals(messages_frame(columns)), "create_balanced_dataset changed the frame it was given; return a new one"
    )
    texts = _texts(balanced, "create_balanced_dataset(df)")
    expect(
        list(balanced.columns) == ["Label", "Text"],
        f"create_balanced_dataset(df) has the columns {list(balanced.columns)}; expected df's, ['Label', 'Text']",
    )
    spam = [t for t, label in zip(columns["Text"], columns["Label"]) if label == "spam"]
    ham = {t for t, label in zip(columns["Text"], columns["Label"]) if label == "ham"}
    counts = balanced["Label"].value_counts().to_dict()
    expect(
        counts.get("spam", 0) == len(spam),
        f"create_balanced_dataset(df) has {counts.get('spam', 0)} spam rows; "
        f"df has {len(spam)}, and all of them are kept",
    )
    expect(
        counts.get("ham", 0) == len(spam),
        f"create_balanced_dataset(df) has {counts.get('ham', 0)} ham rows; expected as many as spam rows, {len(spam)}",
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
def test_create_balanced_dataset_samples_like_the_book(sub, recorded):
    """the ham rows drawn by .sample(num_spam, random_state=123), first, then the spam rows in their order"""
    texts = _texts(sub.create_balanced_dataset(messages_frame(recorded["messages"])), "create_balanced_dataset(df)")
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


def _numbered_frame(num_rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"Label": [i % 2 for i in range(num_rows)], "Text": [f"text {i}" for i in range(num_rows)]},
        index=range(500, 500 + 2 * num_rows, 2),
    )


@spam_data
def test_random_split_cuts_with_int_fractions(sub):
    """int(n * train_frac) and int(n * validation_frac) rows, the rest to test, every row in exactly one part"""
    # 27 * 0.7 = 18.9 and 27 * 0.1 = 2.7 tell int() from round(), and int(27 * 0.8) = 21 from 18 + 2;
    # 1,494 rows are the balanced SMS Spam Collection.
    for num_rows, train_frac, validation_frac in ((27, 0.7, 0.1), (27, 0.5, 0.25), (1494, 0.7, 0.1)):
        df = _numbered_frame(num_rows)
        parts = sub.random_split(df, train_frac, validation_frac)
        expect(
            isinstance(parts, (tuple, list)) and len(parts) == 3,
            "random_split should return (train_df, validation_df, test_df)",
        )
        texts = [
            _texts(part, f"random_split's {name}")
            for part, name in zip(parts, ("train_df", "validation_df", "test_df"))
        ]
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
            sorted(sum(texts, [])) == sorted(df["Text"]),
            f"random_split of {num_rows} rows: the three parts together do not hold every row exactly once",
        )


@spam_data
def test_random_split_shuffles_like_the_book(sub, recorded):
    """the rows in the order of df.sample(frac=1, random_state=123), index reset, then cut"""
    df = messages_frame(recorded["messages"])
    parts = sub.random_split(df, 0.7, 0.1)
    expect(
        df.equals(messages_frame(recorded["messages"])), "random_split changed the frame it was given; shuffle a copy"
    )
    for part, expected, name in zip(parts, recorded["split_texts"], ("train_df", "validation_df", "test_df")):
        texts = _texts(part, f"random_split's {name}")
        if texts != expected:
            in_order = texts == [t for t in df["Text"] if t in set(expected)]
            fail(
                f"random_split's {name} holds other rows than the book's split"
                + (
                    ": shuffle first, with df.sample(frac=1, random_state=123)"
                    if in_order
                    else " (shuffle with df.sample(frac=1, random_state=123), then cut)"
                )
            )
    start = 0
    for part, name in zip(parts, ("train_df", "validation_df", "test_df")):
        expect(
            list(part.index) == list(range(start, start + len(part))),
            f"random_split's {name} has the index "
            f"{list(part.index)[:3]}...; reset the index after shuffling (reset_index(drop=True))",
        )
        start += len(part)


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


def _expect_dataset(dataset, tokenizer, max_length: int, pad_token_id: int, what: str) -> None:
    """Every item is the text's ids cut to max_length and padded with pad_token_id, with its label."""
    expect(len(dataset) == len(SPAM_TEXTS), f"len({what}) is {len(dataset)}; the file has {len(SPAM_TEXTS)} rows")
    expect(
        getattr(dataset, "max_length", None) == max_length,
        f"{what}.max_length is {getattr(dataset, 'max_length', 'missing')}; expected {max_length}",
    )
    encoded_texts = getattr(dataset, "encoded_texts", None)
    expect(
        encoded_texts is not None and len(encoded_texts) == len(SPAM_TEXTS),
        f"{what}.encoded_texts should hold one list of token ids per row",
    )
    for i, (text, label) in enumerate(zip(SPAM_TEXTS, SPAM_LABELS)):
        ids = tokenizer.encode(text)[:max_length]
        expected = torch.tensor(ids + [pad_token_id] * (max_length - len(ids)))
        item = dataset[i]
        expect(isinstance(item, (tuple, list)) and len(item) == 2, f"{what}[{i}] should be a pair (ids, label)")
        got_ids, got_label = item
        expect_tensor(got_ids, f"{what}[{i}]'s ids", dtype=torch.int64)
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
        expect_equal_tensor(torch.as_tensor(list(encoded_texts[i])), expected, f"{what}.encoded_texts[{i}]")
        expect_tensor(got_label, f"{what}[{i}]'s label", shape=(), dtype=torch.int64)
        expect(int(got_label) == label, f"{what}[{i}]'s label is {int(got_label)}; the file says {label}")


@spam_data
def test_spam_dataset_pads_to_the_longest_text(sub, spam_csv, gpt2):
    """without max_length, every text is padded with pad_token_id to the longest one"""
    longest = max(len(gpt2.encode(text)) for text in SPAM_TEXTS)
    dataset = sub.SpamDataset(spam_csv, gpt2, pad_token_id=7)
    _expect_dataset(dataset, gpt2, longest, 7, "SpamDataset(csv_file, tokenizer, pad_token_id=7)")
    expect(
        dataset._longest_encoded_length() == longest,
        f"_longest_encoded_length() is {dataset._longest_encoded_length()}; the longest text has {longest} tokens",
    )
    _expect_dataset(
        sub.SpamDataset(str(spam_csv), gpt2),
        gpt2,
        longest,
        50256,
        "SpamDataset(csv_file, tokenizer), the padding id left at its default,",
    )


@spam_data
def test_spam_dataset_truncates_and_pads_to_max_length(sub, spam_csv, gpt2):
    """with max_length, longer texts are cut to their first max_length tokens, shorter ones padded to it"""
    longest = max(len(gpt2.encode(text)) for text in SPAM_TEXTS)
    for max_length in (5, longest + 3):
        dataset = sub.SpamDataset(spam_csv, gpt2, max_length=max_length, pad_token_id=3)
        _expect_dataset(dataset, gpt2, max_length, 3, f"SpamDataset(..., max_length={max_length}, pad_token_id=3)")


# ---------------------------------------------------------------- ch06.classifier_head


def _headed(sub, model: nn.Module, num_classes: int, seed: int = 7) -> nn.Module:
    torch.manual_seed(seed)
    result = sub.add_classification_head(model, num_classes=num_classes)
    expect(
        result is model,
        "add_classification_head should change the model in place and return it; "
        f"it returned {type(result).__name__}" + (" (a different object)" if isinstance(result, nn.Module) else ""),
    )
    return model


def _expect_trainable(model: nn.Module, what: str) -> None:
    expected = set(trainable_names(model))
    for name, param in model.named_parameters():
        if param.requires_grad and name not in expected:
            fail(
                f"{what}: {name} is still trainable; freeze every parameter except those of out_head, the last "
                "transformer block and final_norm"
            )
        if not param.requires_grad and name in expected:
            part = (
                "the new out_head"
                if name.startswith("out_head")
                else ("final_norm" if name.startswith("final_norm") else "the last transformer block")
            )
            fail(f"{what}: {name} is frozen; {part} must train (requires_grad=True)")


@classifier_head
def test_head_maps_to_num_classes(sub):
    """out_head becomes nn.Linear(emb_dim, num_classes) with a bias: the model gives num_classes logits per token"""
    ids = torch.randint(0, TINY_GPT["vocab_size"], (2, 5), generator=torch.Generator().manual_seed(0))
    for num_classes in (2, 3):
        model = _headed(sub, tiny_gpt(3), num_classes)
        head = model.out_head
        expect(isinstance(head, nn.Linear), f"out_head is a {type(head).__name__}; expected an nn.Linear")
        expect(
            (head.in_features, head.out_features) == (TINY_GPT["emb_dim"], num_classes),
            f"with num_classes={num_classes} out_head maps {head.in_features} -> {head.out_features} features; "
            f"expected emb_dim {TINY_GPT['emb_dim']} -> {num_classes}",
        )
        expect(head.bias is not None, "out_head has no bias; nn.Linear(emb_dim, num_classes) has one by default")
        with torch.no_grad():
            logits = model.eval()(ids)
        expect_tensor(logits, f"the classifier's logits with num_classes={num_classes}", shape=(2, 5, num_classes))


@classifier_head
def test_only_the_head_last_block_and_final_norm_train(sub):
    """every parameter frozen except those of out_head, the last transformer block and final_norm, and gradients follow"""
    model = _headed(sub, tiny_gpt(4, {**TINY_GPT, "n_layers": 3}), 2)
    _expect_trainable(model, "after add_classification_head")
    ids = torch.randint(0, TINY_GPT["vocab_size"], (3, 6), generator=torch.Generator().manual_seed(1))
    F.cross_entropy(model(ids)[:, -1, :], torch.tensor([0, 1, 1])).backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            expect(param.grad is not None and param.grad.abs().sum() > 0, f"no gradient reaches {name}")


@classifier_head
def test_head_comes_from_the_global_generator(sub):
    """after torch.manual_seed(s) the new head is nn.Linear's default draw: no seed of its own inside"""
    for seed in (7, 2024):
        model = _headed(sub, tiny_gpt(5), 2, seed=seed)
        torch.manual_seed(seed)
        expected = nn.Linear(TINY_GPT["emb_dim"], 2)
        for name in ("weight", "bias"):
            got = getattr(model.out_head, name)
            if not torch.allclose(got, getattr(expected, name)):
                fail(
                    f"after torch.manual_seed({seed}), out_head.{name} is not what nn.Linear(emb_dim, num_classes) "
                    "draws: create the head with nn.Linear's own initialisation and do not seed inside the function"
                )


@classifier_head
def test_head_works_for_a_llama(sub):
    """a Llama3Model (no pos_emb, out_head without bias) becomes a classifier too: emb_dim is out_head.in_features"""
    model = _headed(sub, LlamaLayout(), 2)
    with torch.no_grad():
        logits = model.eval()(torch.tensor([[1, 2, 3]]))
    expect_tensor(logits, "a Llama3Model classifier's logits", shape=(1, 3, 2))
    _expect_trainable(model, "add_classification_head on a Llama3Model")


# ---------------------------------------------------------------- ch06.accuracy_and_loss


def _loss_case(seed: int, num_classes: int = 2):
    generator = torch.Generator().manual_seed(seed)
    model = tiny_classifier(seed, num_classes)
    inputs = torch.randint(0, TINY_GPT["vocab_size"], (4, 6), generator=generator)
    return model, inputs, torch.tensor([0, 1, num_classes - 1, 0])


@accuracy_and_loss
def test_calc_loss_batch_is_the_last_tokens_cross_entropy(sub):
    """the cross-entropy of the last token's raw logits against the labels"""
    for seed, num_classes in ((3, 2), (4, 3)):
        model, inputs, labels = _loss_case(seed, num_classes)
        result = sub.calc_loss_batch(inputs, labels, model, "cpu")
        expect_tensor(result, "calc_loss_batch(...)")
        expect(result.numel() == 1, f"calc_loss_batch should return one number; got shape {tuple(result.shape)}")
        got = result.detach().reshape(())
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


@accuracy_and_loss
def test_calc_loss_batch_backpropagates_into_the_trainable_parameters(sub):
    """the loss keeps its graph: backward() reaches the head, the last block and the final norm"""
    model, inputs, labels = _loss_case(5)
    result = sub.calc_loss_batch(inputs, labels, model, torch.device("cpu"))
    expect(
        isinstance(result, torch.Tensor) and result.requires_grad,
        "calc_loss_batch's result has no gradient graph: return the tensor, not .item(), and do not use no_grad",
    )
    result.backward()
    for name, param in model.named_parameters():
        if param.requires_grad:
            expect(param.grad is not None and param.grad.abs().sum() > 0, f"after backward() {name} got no gradient")


def _loader_losses(model, loader) -> list[float]:
    with torch.no_grad():
        return [float(F.cross_entropy(model(x)[:, -1, :], y)) for x, y in loader]


@accuracy_and_loss
def test_calc_loss_loader_averages_the_first_num_batches(sub):
    """the mean of the first num_batches batch losses as a float; None or too many means every batch; empty gives nan"""
    model = tiny_classifier(6)
    loader = labelled_batches(10, 2, torch.Generator().manual_seed(6))
    losses = _loader_losses(model, loader)
    for num_batches, expected in ((None, sum(losses) / 5), (2, sum(losses[:2]) / 2), (9, sum(losses) / 5)):
        got = expect_number(
            sub.calc_loss_loader(loader, model, "cpu", num_batches=num_batches),
            f"calc_loss_loader(..., num_batches={num_batches})",
        )
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
    try:
        empty = sub.calc_loss_loader([], model, "cpu")
    except ZeroDivisionError:
        fail("calc_loss_loader([], ...) divided by zero: return float('nan') for an empty loader")
    expect(math.isnan(expect_number(empty, "calc_loss_loader([], ...)")), "calc_loss_loader([], ...) should be nan")


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


def _accuracy_case(seed: int = 9) -> tuple[nn.Module, DataLoader, list[tuple[int, int]]]:
    """A model, a loader of batches of 3, 3 and 1 examples, and (right, size) per batch: 3 of 3, 0 of 3, 1 of 1."""
    model = tiny_classifier(seed).eval()
    inputs, predicted = _disagreeing_inputs(model, 7, seed)
    labels = predicted.clone()
    labels[3:6] = 1 - labels[3:6]
    return model, DataLoader(TensorDataset(inputs, labels), batch_size=3, shuffle=False), [(3, 3), (0, 3), (1, 1)]


@accuracy_and_loss
def test_calc_accuracy_loader_counts_right_examples(sub):
    """the share of examples whose last-token argmax is the label, over the first num_batches batches"""
    model, loader, per_batch = _accuracy_case()
    for num_batches in (None, 2, 1, 10):
        used = per_batch[: num_batches or len(per_batch)]
        expected = sum(right for right, _ in used) / sum(size for _, size in used)
        got = expect_number(
            sub.calc_accuracy_loader(loader, model, "cpu", num_batches=num_batches),
            f"calc_accuracy_loader(..., num_batches={num_batches})",
        )
        if math.isclose(got, 1 - expected) and not math.isclose(expected, 0.5):
            fail(
                "calc_accuracy_loader counts the wrong predictions: its classes come from another token than the "
                "last one, logits[:, -1, :]"
            )
        if num_batches is None and math.isclose(got, sum(r / s for r, s in per_batch) / len(per_batch)):
            fail(
                "calc_accuracy_loader averages the batches' accuracies; count the right examples over all examples "
                "(a batch of 1 weighs less than a batch of 3)"
            )
        expect(
            math.isclose(got, expected, abs_tol=1e-6),
            f"calc_accuracy_loader(..., num_batches={num_batches}) over "
            f"batches of 3, 3 and 1 examples gave {got:.4f}; expected {expected:.4f}",
        )


@accuracy_and_loss
def test_calc_accuracy_loader_evaluates_in_eval_mode_without_gradients(sub):
    """every forward call of calc_accuracy_loader runs in eval mode under no_grad, even when the model was training"""
    model, loader, _ = _accuracy_case(11)
    log = ForwardLog(model.train())
    sub.calc_accuracy_loader(loader, model, "cpu")
    expect(log.calls, "calc_accuracy_loader never called the model")
    expect(
        all(not training for training, _, _ in log.calls),
        "calc_accuracy_loader ran the model in train mode: call model.eval() first, so dropout is off while measuring",
    )
    expect(
        all(not grad for _, grad, _ in log.calls),
        "calc_accuracy_loader ran the model with gradients on: wrap the forward passes in torch.no_grad()",
    )


# ---------------------------------------------------------------- ch06.train_classifier


def _train(function, run: ClassifierRun, **settings) -> tuple[object, StepLog, ForwardLog]:
    log, forward_log = StepLog(run), ForwardLog(run.model)
    with contextlib.redirect_stdout(io.StringIO()):
        results = function(run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **settings)
    return results, log, forward_log


def _expect_results(results, what: str) -> tuple[list[list[float]], int]:
    expect(
        isinstance(results, (tuple, list)) and len(results) == 5,
        f"{what} should return (train_losses, val_losses, "
        f"train_accs, val_accs, examples_seen); got {type(results).__name__}"
        + (f" of length {len(results)}" if isinstance(results, (tuple, list)) else ""),
    )
    *curves, examples_seen = results
    return (
        [[expect_number(v, f"an entry of {what}'s lists") for v in values] for values in curves],
        int(expect_number(examples_seen, f"{what}'s examples_seen")),
    )


@train_classifier
def test_train_classifier_simple_reproduces_the_reference_run(sub, recorded):
    """same evaluations, accuracies, examples seen, gradients and final weights as the reference's run"""
    case = recorded["train"]
    run = classifier_run(seed=case["seed"])
    settings = {k: case[k] for k in ("num_epochs", "eval_freq", "eval_iter")}
    results, log, _ = _train(sub.train_classifier_simple, run, **settings)
    curves, examples_seen = _expect_results(results, "train_classifier_simple")
    steps = len(case["grad_norms"])
    expect(
        len(log.grad_norms) == steps,
        f"train_classifier_simple made {len(log.grad_norms)} optimizer steps; expected "
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
    for values, expected, name in zip(curves, case["curves"], names):
        if len(values) != len(expected):
            rule = (
                f"one per epoch ({case['num_epochs']})"
                if "accuracies" in name
                else f"after every step whose number, counted from 0 over all epochs, is a multiple of eval_freq={case['eval_freq']}"
            )
            fail(f"train_classifier_simple returned {len(values)} {name}; expected {len(expected)}: {rule}")
    for step, (norm, expected_norm) in enumerate(zip(log.grad_norms, case["grad_norms"])):
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
    for values, expected, name in zip(curves, case["curves"], names):
        expect_close(
            torch.tensor(values), torch.tensor(expected), f"train_classifier_simple's {name}", atol=TOL, rtol=TOL
        )
    for name, tensor in trained_parameter_state(run.model).items():
        expect_close(
            tensor, case["state"][name], f"the model's {name} after train_classifier_simple", atol=TOL, rtol=TOL
        )


@train_classifier
def test_train_classifier_simple_lowers_the_loss(sub):
    """three epochs on a few fixed batches lower the training loss"""
    run = classifier_run(seed=11, lr=0.05)
    before = sum(_loader_losses(run.model, run.train_loader))
    _train(sub.train_classifier_simple, run, num_epochs=3, eval_freq=100, eval_iter=1)
    after = sum(_loader_losses(run.model, run.train_loader))
    expect(
        after < before * 0.9,
        f"after 3 epochs the training loss went from {before / 5:.3f} to {after / 5:.3f}; "
        "the optimizer steps should lower it",
    )


@train_classifier
def test_train_classifier_simple_trains_in_train_mode_and_measures_in_eval_mode(sub):
    """forward passes with gradients run in train mode (every epoch), those without in eval mode"""
    run = classifier_run(seed=12)
    _, _, forward_log = _train(sub.train_classifier_simple, run, num_epochs=2, eval_freq=2, eval_iter=1)
    for training, grad, _ in forward_log.calls:
        if grad and not training:
            fail(
                "train_classifier_simple trained in eval mode: calc_accuracy_loader leaves the model in eval mode, "
                "so call model.train() at the start of every epoch"
            )
        if training and not grad:
            fail("train_classifier_simple measured losses or accuracies in train mode: evaluate with model.eval()")
    expect(any(not grad for _, grad, _ in forward_log.calls), "train_classifier_simple never evaluated the model")


@train_classifier
def test_evaluate_model_measures_both_losses_in_eval_mode(sub):
    """(train_loss, val_loss) over eval_iter batches each, in eval mode without gradients, the model back in train mode"""
    run = classifier_run(seed=13)
    expected = [
        sum(losses[:2]) / 2
        for losses in (_loader_losses(run.model, run.train_loader), _loader_losses(run.model, run.val_loader))
    ]
    forward_log = ForwardLog(run.model.train())
    result = sub.evaluate_model(run.model, run.train_loader, run.val_loader, "cpu", eval_iter=2)
    expect(
        isinstance(result, (tuple, list)) and len(result) == 2, "evaluate_model should return (train_loss, val_loss)"
    )
    for value, wanted, name in zip(result, expected, ("train_loss", "val_loss")):
        got = expect_number(value, f"evaluate_model's {name}")
        expect(
            math.isclose(got, wanted, rel_tol=1e-5),
            f"evaluate_model's {name} with eval_iter=2 is {got:.6f}; "
            f"expected {wanted:.6f}, the mean loss of the first 2 batches",
        )
    expect(
        all(not training and not grad for training, grad, _ in forward_log.calls),
        "evaluate_model ran the model in train mode or with gradients: use model.eval() and torch.no_grad()",
    )
    expect(run.model.training, "evaluate_model left the model in eval mode; call model.train() before returning")


# ---------------------------------------------------------------- ch06.classify_review

# One id per character; s, p, a and m vote spam. Id 0 ("x") votes ham, so padding with 0 shows.
VOTE_ALPHABET = "xyzspamh"
VOTE_CONTEXT = 8
PAD = VOTE_ALPHABET.index("p")


def _vote_model() -> TokenVoteClassifier:
    votes = [char in "spam" for char in VOTE_ALPHABET]
    return TokenVoteClassifier(votes, VOTE_CONTEXT).train()


def _classify(sub, text: str, max_length: int, pad_token_id: int = PAD) -> tuple[str, TokenVoteClassifier]:
    model = _vote_model()
    label = sub.classify_review(
        text, model, CharTokenizer(VOTE_ALPHABET), "cpu", max_length=max_length, pad_token_id=pad_token_id
    )
    expect_type(label, str, f"classify_review({text!r}, ...)")
    expect(label in ("spam", "not spam"), f'classify_review returned {label!r}; expected "spam" or "not spam"')
    return label, model


@classify_review
def test_classify_review_reads_the_last_token(sub):
    """the class of the last token decides, not the first one's"""
    for text, expected in (("hams", "spam"), ("shhh", "not spam"), ("xyzp", "spam"), ("sxxx", "not spam")):
        label, _ = _classify(sub, text, max_length=len(text))
        expect(
            label == expected,
            f"classify_review of a {len(text)}-token text with max_length={len(text)} said "
            f"{label!r} where its last token says {expected!r}: read the last token's logits, logits[:, -1, :], "
            'and map class 1 to "spam"',
        )


@classify_review
def test_classify_review_pads_with_pad_token_id_to_max_length(sub):
    """a short text is padded with pad_token_id to exactly max_length tokens, so the last token is padding"""
    label, model = _classify(sub, "hh", max_length=5)
    shapes = [shape for _, _, shape in model.calls]
    expect(
        shapes == [(1, 5)],
        f"classify_review called the model with inputs of shapes {shapes}; expected one call "
        "with a (1, max_length) batch: pad the text to max_length",
    )
    expect(
        label == "spam",
        "classify_review of a short text said 'not spam' where its padding token votes spam: pad with pad_token_id",
    )


@classify_review
def test_classify_review_truncates_to_max_length(sub):
    """a long text is cut to its first max_length tokens, so the token at max_length - 1 decides"""
    for text, max_length, expected in (("hhsphh", 4, "spam"), ("sssshh", 3, "spam"), ("hhhhhhhhs", 8, "not spam")):
        label, model = _classify(sub, text, max_length=max_length)
        shapes = [shape for _, _, shape in model.calls]
        expect(
            shapes == [(1, max_length)],
            f"classify_review of a {len(text)}-token text with max_length={max_length} "
            f"called the model with inputs of shapes {shapes}; expected one (1, {max_length}) batch",
        )
        expect(
            label == expected,
            f"classify_review of a {len(text)}-token text with max_length={max_length} said "
            f"{label!r}: keep the first max_length tokens",
        )


@classify_review
def test_classify_review_runs_in_eval_mode_without_gradients(sub):
    """the model runs in eval mode under no_grad, even when it was training"""
    _, model = _classify(sub, "spam", max_length=6)
    expect(
        all(not training for training, _, _ in model.calls),
        "classify_review ran the model in train mode: call model.eval() first",
    )
    expect(
        all(not grad for _, grad, _ in model.calls),
        "classify_review ran the model with gradients on: use torch.no_grad()",
    )
