"""Hidden checks of chapter 6: the live reference against the submission on frames, texts,
classifiers and runs drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import contextlib
import io
import math
import random

import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.classifier_setups import (
    TINY_GPT,
    classifier_run,
    messages_frame,
    tiny_classifier,
    tiny_gpt,
)
from autograder.checks.modules import parameter_state, trained_parameter_state
from autograder.checks.test_ch06 import (
    EventLog,
    accuracy_and_loss,
    classifier_head,
    classify_review,
    expected_tokens,
    length_problem,
    mode_problem,
    raised_problem,
    review,
    spam_data,
    train_classifier,
)
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


def _uneven_labels(model, ids, batch_size, last, num_classes, generator, rng) -> torch.Tensor:
    """Labels for `ids` right or wrong at random, the smaller last batch of `last` examples all right or all
    wrong and the full batches not all the same as it: then the mean of the batches' accuracies differs
    from the share of right examples."""
    with torch.no_grad():
        predicted = model(ids)[:, -1, :].argmax(-1)
    right = torch.rand(len(ids), generator=generator) < 0.5
    last_right = rng.random() < 0.5
    right[-last:] = last_right
    if bool((right[:-last] == last_right).all()):
        right[rng.randrange(len(ids) - last)] = not last_right
    shift = torch.randint(1, num_classes, (len(ids),), generator=generator)
    return torch.where(right, predicted, (predicted + shift) % num_classes)


def _mean_batch_loss_gap(model, ids, labels, batch_size) -> float:
    """|mean of the batch losses - mean loss per example|, relative to the latter."""
    with torch.no_grad():
        losses = F.cross_entropy(model(ids)[:, -1, :], labels, reduction="none")
    batch_means = [chunk.mean() for chunk in losses.split(batch_size)]
    per_example = losses.mean()
    return float(abs(sum(batch_means) / len(batch_means) - per_example) / per_example)


def _loader_case(seed):
    """A random classifier and loader whose last batch is smaller than the others, on every seed, with labels
    that make its accuracy and loss differ from the unweighted mean of the batches' (and so tell the
    per-example accuracy from the mean of batch accuracies, and the mean batch loss from the per-example loss)."""
    rng = random.Random(seed)
    num_classes, batch_size = rng.randint(2, 4), rng.randint(2, 4)
    full_batches, last = rng.randint(1, 3), rng.randint(1, batch_size - 1)
    num_tokens = rng.randint(1, TINY_GPT["context_length"])
    model_seed = seed % 1000
    model = tiny_classifier(model_seed, num_classes)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(50):
        ids = torch.randint(
            0, TINY_GPT["vocab_size"], (full_batches * batch_size + last, num_tokens), generator=generator
        )
        labels = _uneven_labels(model, ids, batch_size, last, num_classes, generator, rng)
        if _mean_batch_loss_gap(model, ids, labels, batch_size) > 1e-3:
            break
    return {
        "model_seed": model_seed,
        "num_classes": num_classes,
        "batch_size": batch_size,
        "ids": ids,
        "labels": labels,
        # None reaches the smaller last batch; the other may stop before it
        "num_batches": [None, rng.randint(1, full_batches + 2)],
    }


def _classifier_and_loader(case):
    model = tiny_classifier(case["model_seed"], case["num_classes"])
    loader = DataLoader(TensorDataset(case["ids"], case["labels"]), batch_size=case["batch_size"], shuffle=False)
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


def _batch_figures(model, loader, num_batches) -> dict:
    """What the mistakes of an uneven last batch give over the first num_batches batches: the mean of the
    batches' accuracies, the right examples over num_batches full batches, the loss per example, and the
    accuracy and loss without the smaller last batch."""
    used = [batch for i, batch in enumerate(loader) if num_batches is None or i < num_batches]
    with torch.no_grad():
        logits = [model(x)[:, -1, :] for x, _ in used]
    rights = [int((lg.argmax(-1) == y).sum()) for lg, (_, y) in zip(logits, used, strict=True)]
    sizes = [len(y) for _, y in used]
    losses = [F.cross_entropy(lg, y, reduction="sum").item() for lg, (_, y) in zip(logits, used, strict=True)]
    return {
        "mean_batch_accuracy": sum(r / s for r, s in zip(rights, sizes, strict=True)) / len(used),
        "full_batch_accuracy": sum(rights) / (len(used) * loader.batch_size),
        "per_example_loss": sum(losses) / sum(sizes),
        "uneven": sizes[-1] != loader.batch_size,
        "accuracy_without_last": sum(rights[:-1]) / max(1, sum(sizes[:-1])),
        "loss_without_last": sum(loss / size for loss, size in zip(losses[:-1], sizes[:-1], strict=True))
        / max(1, len(used) - 1),
    }


@accuracy_and_loss
@split(setup=_loader_case, produce=_losses_and_accuracies)
def test_accuracy_and_losses_agree_with_reference(outputs, case, ref):
    """hidden: random classifiers, batch sizes and num_batches; the last batch smaller than the others"""
    model, loader = _classifier_and_loader(case)
    x, y = next(iter(loader))
    expect_close(
        outputs["batch_loss"],
        ref.calc_loss_batch(x, y, model, "cpu").detach(),
        f"calc_loss_batch on a {tuple(x.shape)} batch",
    )
    expect_list(outputs["loaders"], len(case["num_batches"]), "the loader results")
    for num_batches, results in zip(case["num_batches"], outputs["loaders"], strict=True):
        expect_type(results, dict, "the loader results")
        figures = _batch_figures(model, loader, num_batches)
        where = f"over {len(loader)} batches, the last one smaller, with num_batches={num_batches}"
        expect(
            not isinstance(results.get("calc_loss_loader"), torch.Tensor),
            "calc_loss_loader returned a tensor; return a float (add up calc_loss_batch(...).item())",
        )
        for function in LOADER_FUNCTIONS:
            got = expect_number(results.get(function), f"{function} with num_batches={num_batches}")
            expected = getattr(ref, function)(loader, model, "cpu", num_batches=num_batches)
            if math.isclose(got, expected, rel_tol=1e-5, abs_tol=1e-7):
                continue
            if figures["uneven"] and len(loader) > 1:
                without_last = figures[
                    "accuracy_without_last" if function == "calc_accuracy_loader" else "loss_without_last"
                ]
                if math.isclose(got, without_last, rel_tol=1e-5, abs_tol=1e-7):
                    fail(f"{function} {where} skipped the smaller last batch: use every batch the loader has")
            if figures["uneven"] and function == "calc_accuracy_loader":
                if math.isclose(got, figures["mean_batch_accuracy"], abs_tol=1e-7):
                    fail(
                        f"calc_accuracy_loader {where} averaged the batches' accuracies: count the right examples "
                        "over all examples, so the smaller last batch counts for less"
                    )
                if math.isclose(got, figures["full_batch_accuracy"], abs_tol=1e-7):
                    fail(
                        f"calc_accuracy_loader {where} counted every batch as batch_size examples: count the "
                        "examples of each batch, the last one holds fewer"
                    )
            if figures["uneven"] and function == "calc_loss_loader":
                if math.isclose(got, figures["per_example_loss"], rel_tol=1e-5):
                    fail(
                        f"calc_loss_loader {where} weighed the batch losses by their sizes: average the "
                        "calc_loss_batch values, each batch counting once"
                    )
            fail(f"{function} {where} differs from the reference's")


def _run_case(seed):
    rng = random.Random(seed)
    # Two epochs or more and two batches or more: a step right after an evaluation and one right after an
    # epoch's accuracies, on every seed. eval_freq does not divide the batches per epoch, so step numbers
    # that restart every epoch evaluate after other steps than numbers running on across epochs.
    settings = {"num_epochs": rng.randint(2, 3), "eval_freq": rng.randint(2, 4), "eval_iter": rng.randint(1, 3)}
    train_batches = rng.choice([n for n in range(2, 8) if n % settings["eval_freq"]])
    run = {"train_batches": train_batches, "batch_size": rng.randint(1, 3), "lr": rng.choice([0.005, 0.02])}
    return {"settings": settings, "run": {"seed": seed % 1000, **run}}


def _trained(train_classifier_simple, case):
    """train_classifier_simple on a fresh classifier_run of the case, printing nothing; (its result, the run,
    the `EventLog` of its forward calls and optimizer steps)."""
    run = classifier_run(**case["run"])
    log = EventLog(run)
    with contextlib.redirect_stdout(io.StringIO()):
        result = train_classifier_simple(
            run.model, run.train_loader, run.val_loader, run.optimizer, "cpu", **case["settings"]
        )
    return result, run, log


def _training_result_and_weights(sub, case):
    result, run, log = _trained(sub.train_classifier_simple, case)
    return {"result": result, "parameters": parameter_state(run.model), "events": log.events}


def _numbers(values, what: str) -> list[float]:
    """`values` (a list, a tuple or a 1-D tensor of numbers) as floats; fails naming `what` otherwise."""
    if isinstance(values, torch.Tensor) and values.dim() == 1:
        values = values.tolist()
    expect(isinstance(values, (list, tuple)), f"{what} should be a list of numbers; got {type(values).__name__}")
    return [expect_number(value, what) for value in values]


@train_classifier
@split(setup=_run_case, produce=_training_result_and_weights)
def test_train_classifier_simple_agrees_with_reference(outputs, case, ref):
    """hidden: a run with random epochs, eval_freq, eval_iter and batch counts, training in train mode and
    evaluating in eval mode without gradients"""
    expected, run, _ = _trained(ref.train_classifier_simple, case)
    problem = mode_problem(outputs["events"], case["run"]["train_batches"], case["settings"]["eval_freq"])
    if problem is not None:
        fail(problem)
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


# Every kind of call, on every seed: (Llama layout, max_length, text). max_length is None, below the context
# or above it; the text is shorter than the tokens the model is to get (so padding, or its absence, shows) or
# longer (so truncation shows).
REVIEW_KINDS = tuple(
    (llama, max_length, text)
    for llama in (False, True)
    for max_length in ("none", "below", "above")
    for text in ("short", "long")
)
MAX_LENGTH_WORDS = {
    "none": "max_length=None",
    "below": "max_length below the context",
    "above": "max_length above the context",
}


def _vote_spec(rng: random.Random, alphabet: str, spam: str, llama: bool) -> dict:
    """A random vote model's layout and sizes: context, embedding width and vocabulary all different."""
    context = rng.randint(4, 9)
    emb_dim = rng.choice([size for size in range(2, 13) if size not in (context, len(alphabet))])
    return {"alphabet": alphabet, "spam": spam, "context": context, "emb_dim": emb_dim, "llama": llama}


def _vote_trial(rng: random.Random, spec: dict, max_length_kind: str, text_kind: str) -> dict:
    context = spec["context"]
    max_length = {"none": None, "below": rng.randint(2, context - 1), "above": rng.randint(context + 1, context + 6)}[
        max_length_kind
    ]
    tokens = expected_tokens(spec, context, max_length)
    length = rng.randint(1, tokens - 1) if text_kind == "short" else rng.randint(tokens + 1, tokens + 6)
    return {
        "spec": spec,
        "text": "".join(rng.choice(spec["alphabet"]) for _ in range(length)),
        "max_length": max_length,
        "pad": rng.randrange(len(spec["alphabet"])),
        "kind": [max_length_kind, text_kind],
    }


def _reviews_case(seed):
    rng = random.Random(seed)
    letters = list(ALPHABET[:26])
    rng.shuffle(letters)
    alphabet = "".join(letters[: rng.randint(6, 10)])
    spam = "".join(rng.sample(alphabet, rng.randint(2, len(alphabet) - 2)))
    specs = {llama: _vote_spec(rng, alphabet, spam, llama) for llama in (False, True)}
    votes = [_vote_trial(rng, specs[llama], max_length, text) for llama, max_length, text in REVIEW_KINDS]
    tiny = []
    for trial in range(6):
        text = "".join(rng.choice(REVIEW_TOKENIZER.alphabet) for _ in range(rng.randint(1, 14)))
        context = TINY_GPT["context_length"]
        max_length = rng.choice([None, rng.randint(1, context), rng.randint(context + 1, 2 * context)])
        pad = rng.randint(0, len(REVIEW_TOKENIZER.alphabet) - 1)
        tiny.append({"model_seed": seed % 1000 + trial, "text": text, "max_length": max_length, "pad": pad})
    return {"votes": votes, "tiny": tiny}


def _vote_review(classify, trial: dict) -> dict:
    return review(classify, trial["spec"], trial["text"], trial["max_length"], pad_token_id=trial["pad"])


def _review_label(classify, trial):
    """`classify` (a classify_review) on the trial's text with a fresh tiny classifier of the trial's seed:
    {"label": its answer, "raised": the exception it raised, as "Type: message"}."""
    try:
        label = classify(
            trial["text"],
            tiny_classifier(trial["model_seed"]),
            REVIEW_TOKENIZER,
            "cpu",
            max_length=trial["max_length"],
            pad_token_id=trial["pad"],
        )
    except NotImplementedError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
        return {"label": None, "raised": f"{type(exc).__name__}: {exc}"}
    return {"label": label if isinstance(label, str) else repr(label), "raised": None}


def _review_labels(sub, case):
    return {
        "votes": [_vote_review(sub.classify_review, trial) for trial in case["votes"]],
        "tiny": [_review_label(sub.classify_review, trial) for trial in case["tiny"]],
    }


def _ids_problem(got: list, expected: list, trial: dict) -> str:
    """Compare: what differs between the ids the model got and the reference's, both of the same length."""
    ids = CharTokenizer(trial["spec"]["alphabet"]).encode(trial["text"])
    n, pad = len(expected), trial["pad"]
    if len(ids) > n and got == ids[-n:]:
        return "it kept the last tokens of the text: keep the first ones"
    if len(ids) < n and got == [pad] * (n - len(ids)) + ids:
        return "it padded on the left: the padding goes after the text"
    if len(ids) < n and got[: len(ids)] == ids:
        return "it padded with another id than pad_token_id"
    return "they are other ids than the text's first tokens followed by pad_token_id"


@classify_review
@split(setup=_reviews_case, produce=_review_labels)
def test_classify_review_agrees_with_reference(outputs, case, ref):
    """hidden: random texts, max_length None, below and above the context, on GPT- and Llama-like models,
    and random texts on random tiny GPT classifiers"""
    expect_type(outputs, dict, "classify_review's answers")
    expect_list(outputs.get("votes"), len(case["votes"]), "classify_review's answers")
    for trial, facts in zip(case["votes"], outputs["votes"], strict=True):
        spec, max_length = trial["spec"], trial["max_length"]
        max_length_kind, text_kind = trial["kind"]
        what = (
            f"classify_review with {MAX_LENGTH_WORDS[max_length_kind]} on a text {text_kind}er than what the "
            f"model takes, on a {'Llama3Model' if spec['llama'] else 'GPTModel'}-like model,"
        )
        if facts["raised"] is not None:
            fail(raised_problem(facts["raised"], spec, max_length))
        theirs = _vote_review(ref.classify_review, trial)
        expected = theirs["inputs"][0][0].tolist()
        shapes = [shape for _, _, shape in facts["calls"]]
        expect(
            len(shapes) == 1 and len(shapes[0]) == 2 and shapes[0][0] == 1,
            f"{what} should call the model once, on a batch of one sequence",
        )
        if shapes[0][1] != len(expected):
            fail(
                f"{what} gave the model another number of tokens than the reference: "
                + length_problem(shapes[0][1], spec, len(trial["text"]), max_length)
            )
        if facts["refused"] is not None:
            fail(facts["refused"])
        got = facts["inputs"][0][0].tolist()
        if got != expected:
            fail(f"{what} gave the model other token ids than the reference: {_ids_problem(got, expected, trial)}")
        expect(
            all(not training and not grad for training, grad, _ in facts["calls"]),
            f"{what} ran the model in train mode or with gradients: use model.eval() and torch.no_grad()",
        )
        expect(
            facts["label"] == theirs["label"],
            f"{what} said {facts['label']!r} where the reference says otherwise: read the last token's logits, "
            'logits[:, -1, :], and map class 1 to "spam"',
        )
    expect_list(outputs.get("tiny"), len(case["tiny"]), "classify_review's answers")
    for trial, got in zip(case["tiny"], outputs["tiny"], strict=True):
        spec = {"context": TINY_GPT["context_length"], "llama": False}
        if got["raised"] is not None:
            fail(raised_problem(got["raised"], spec, trial["max_length"]))
        expected = _review_label(ref.classify_review, trial)["label"]
        expect(
            got["label"] == expected,
            f"classify_review of a {len(trial['text'])}-character text with "
            f"max_length={trial['max_length']} on a tiny GPTModel classifier said {got['label']!r}; "
            "the reference says otherwise",
        )
