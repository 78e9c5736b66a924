"""Hidden checks of chapter 7: the live reference against the submission on entries, batches and
scripted models drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import random

import torch

from autograder.checks.test_ch07 import (
    ALPHABET,
    RESPONSE_HEADER,
    ScriptedModel,
    collate,
    extract_response,
    format_input,
    instruction_dataset,
    prompt_masking,
)
from autograder.checks.toy_models import CharTokenizer, WindowLanguageModel
from autograder.compare import expect, expect_list, expect_type, fail
from autograder.split import split

WORDS = [
    "Rewrite",
    "the",
    "sentence",
    "Name",
    "a",
    "color",
    "of",
    "7",
    "12.5",
    "caf\u00e9",
    "'quoted'",
    '"x"',
    "list:",
    "one,",
    "two",
    "?",
    "!",
    "-->",
    "Give",
]
TOKENIZER = CharTokenizer(ALPHABET)
SCRIPT_EOS_ID = TOKENIZER.encode("|")[0]
OFF_SCRIPT_ID = TOKENIZER.encode("~")[0]
SCRIPT_CONTEXT = 512


def _text(rng: random.Random, max_words: int, lines: bool = False) -> str:
    separators = [" ", " ", " ", "\n"] if lines else [" "]
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, max_words))]
    return "".join(word + rng.choice(separators) for word in words[:-1]) + words[-1]


def _entries(rng: random.Random, count: int) -> list[dict]:
    return [
        {
            "instruction": _text(rng, 8),
            "input": _text(rng, 6, lines=True) if rng.random() < 0.6 else "",
            "output": _text(rng, 10),
        }
        for _ in range(count)
    ]


def _first_difference(got: list, expected: list) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))


def _entries_case(seed):
    return {"entries": _entries(random.Random(seed), 8)}


def _formatted(sub, case):
    return [sub.format_input(dict(entry)) for entry in case["entries"]]


@format_input
@split(setup=_entries_case, produce=_formatted)
def test_format_input_agrees_with_reference(outputs, case, ref):
    """hidden: random entries with and without inputs"""
    expect_list(outputs, len(case["entries"]), "format_input's results")
    for entry, got in zip(case["entries"], outputs):
        expected = ref.format_input(entry)
        expect_type(got, str, "format_input(...)")
        if got != expected:
            which = "with an input" if entry["input"] else "with an empty input"
            fail(
                f"format_input differs from the reference on a random entry {which}, first at character "
                f"{_first_difference(got, expected)}"
            )


def _dataset_case(seed):
    return {"entries": _entries(random.Random(seed), 6)}


def _dataset_items(dataset, count: int) -> dict:
    """len(dataset) and its first items, at most `count` (the number of entries it was built from)."""
    length = len(dataset)
    return {"length": length, "items": [dataset[index] for index in range(min(length, count))]}


def _plain(value):
    """`value` with every tensor as its values (lists and numbers), lists and tuples kept apart."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    return value


def _comparable_item(got):
    """A dataset item to compare with the reference's: its values, and a (prompt length, ids) pair's ids
    as a list whatever sequence holds them."""
    got = _plain(got)
    if isinstance(got, tuple) and len(got) == 2 and isinstance(got[1], (list, tuple)):
        return (got[0], list(got[1]))
    return got


def _expect_same_items(outputs: dict, expected_dataset, count: int, what: str) -> None:
    expect(outputs["length"] == count, f"len({what}) of {count} random entries is {outputs['length']}")
    expect_list(outputs["items"], count, f"{what}'s items")
    for index, got in enumerate(outputs["items"]):
        expect(
            _comparable_item(got) == expected_dataset[index],
            f"{what}[{index}] differs from the reference's on random entries",
        )


def _instruction_items(sub, case, gpt2):
    entries = case["entries"]
    return _dataset_items(sub.InstructionDataset([dict(entry) for entry in entries], gpt2), len(entries))


@instruction_dataset
@split(setup=_dataset_case, produce=_instruction_items)
def test_instruction_dataset_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random entries tokenized with GPT-2's tokenizer"""
    entries = case["entries"]
    _expect_same_items(outputs, ref.InstructionDataset(entries, gpt2), len(entries), "InstructionDataset")


def _batch(rng: random.Random) -> list[list[int]]:
    """1-5 examples of 1-12 tokens, none of them the pad token (whether a pad token an example already
    ends with is padding or text is a choice the book's mask makes one way and a length-based mask the other)."""
    return [[rng.randrange(0, 30) for _ in range(rng.randint(1, 12))] for _ in range(rng.randint(1, 5))]


def _settings(rng: random.Random) -> dict:
    settings = {}
    if rng.random() < 0.5:
        settings["pad_token_id"] = rng.choice([30, 31, 999])
    if rng.random() < 0.5:
        settings["ignore_index"] = rng.choice([-1, -5, -100])
    if rng.random() < 0.6:
        settings["allowed_max_length"] = rng.randint(1, 14)
    return settings


def _expect_same_batch(got, expected, what: str) -> None:
    expect(isinstance(got, (tuple, list)) and len(got) == 2, f"{what} should return (inputs, targets)")
    for tensor, expected_tensor, name in zip(got, expected, ("inputs", "targets")):
        expect(isinstance(tensor, torch.Tensor), f"{what}'s {name} should be a tensor")
        expect(
            tensor.shape == expected_tensor.shape,
            f"{what}: {name} of shape {tuple(tensor.shape)}, the reference's {tuple(expected_tensor.shape)}",
        )
        bad = (tensor != expected_tensor).nonzero()
        if len(bad):
            row, position = bad[0].tolist()
            fail(f"{what}: {name} differ from the reference's, first at row {row}, position {position}")


def _collate_what(function_name: str, settings: dict) -> str:
    return f"{function_name} on a random batch ({', '.join(settings) or 'default arguments'})"


def _collate_case(seed):
    rng = random.Random(seed)
    return [{"settings": _settings(rng), "batch": _batch(rng)} for _ in range(12)]


def _collated(custom_collate_fn, trial):
    return custom_collate_fn([list(item) for item in trial["batch"]], **trial["settings"])


def _collated_batches(sub, case):
    return [_collated(sub.custom_collate_fn, trial) for trial in case]


@collate
@split(setup=_collate_case, produce=_collated_batches)
def test_collate_agrees_with_reference(outputs, case, ref):
    """hidden: random batches, pad and ignore values and allowed_max_length"""
    expect_list(outputs, len(case), "custom_collate_fn's results")
    for trial, got in zip(case, outputs):
        _expect_same_batch(
            got, _collated(ref.custom_collate_fn, trial), _collate_what("custom_collate_fn", trial["settings"])
        )


def _prompt_length_items(sub, case, gpt2):
    entries = case["entries"]
    return _dataset_items(
        sub.InstructionDatasetWithPromptLength([dict(entry) for entry in entries], gpt2), len(entries)
    )


@prompt_masking
@split(setup=_dataset_case, produce=_prompt_length_items)
def test_prompt_length_dataset_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random entries tokenized with GPT-2's tokenizer"""
    entries = case["entries"]
    _expect_same_items(
        outputs,
        ref.InstructionDatasetWithPromptLength(entries, gpt2),
        len(entries),
        "InstructionDatasetWithPromptLength",
    )


def _masked_case(seed):
    rng = random.Random(seed)
    trials = []
    for _ in range(12):
        settings = _settings(rng)
        trials.append({"settings": settings, "batch": [(rng.randint(1, len(item)), item) for item in _batch(rng)]})
    return trials


def _masked(custom_collate_fn_masked, trial):
    return custom_collate_fn_masked([(length, list(item)) for length, item in trial["batch"]], **trial["settings"])


def _masked_batches(sub, case):
    return [_masked(sub.custom_collate_fn_masked, trial) for trial in case]


@prompt_masking
@split(setup=_masked_case, produce=_masked_batches)
def test_masked_collate_agrees_with_reference(outputs, case, ref):
    """hidden: random batches with prompts of random lengths"""
    expect_list(outputs, len(case), "custom_collate_fn_masked's results")
    for trial, got in zip(case, outputs):
        _expect_same_batch(
            got,
            _masked(ref.custom_collate_fn_masked, trial),
            _collate_what("custom_collate_fn_masked", trial["settings"]),
        )


def _scripted_trial(rng: random.Random, format_input_of) -> dict:
    """An entry (in ALPHABET), a script that is its prompt, a continuation with a random header, whitespace
    and length, the end-of-text token and more, and a random max_new_tokens."""
    entry = _entries(rng, 1)[0]
    entry = {key: "".join(c for c in value if c in ALPHABET) or "a" for key, value in entry.items()}
    continuation = (
        rng.choice([RESPONSE_HEADER, "\n### Response:", ""])
        + rng.choice(["", "  "])
        + "".join(rng.choice(ALPHABET[:-3]) for _ in range(rng.randint(0, 20)))
        + rng.choice(["", "\n", " "])
    )
    script = TOKENIZER.encode(format_input_of(entry) + continuation) + [SCRIPT_EOS_ID] + TOKENIZER.encode("more")
    return {"entry": entry, "script": script, "max_new_tokens": rng.randint(1, 40)}


def _response_case(ref, seed):
    rng = random.Random(seed)
    scripted = [_scripted_trial(rng, ref.format_input) for _ in range(3)]
    window = {
        "context_size": rng.randint(2, 8),
        "model_seed": seed % 1000,
        "eos_id": rng.randrange(len(ALPHABET)),
        "entry": {"instruction": "Name a color.", "input": rng.choice(["", "red"]), "output": "Red."},
        "max_new_tokens": rng.randint(5, 25),
    }
    return {"scripted": scripted, "window": window}


def _scripted_response(generate_response, trial):
    model = ScriptedModel(trial["script"], len(ALPHABET), SCRIPT_CONTEXT, OFF_SCRIPT_ID)
    return generate_response(
        model,
        TOKENIZER,
        dict(trial["entry"]),
        SCRIPT_CONTEXT,
        max_new_tokens=trial["max_new_tokens"],
        eos_id=SCRIPT_EOS_ID,
    )


def _window_response(generate_response, window):
    model = WindowLanguageModel(len(ALPHABET), window["context_size"], seed=window["model_seed"])
    return generate_response(
        model,
        TOKENIZER,
        dict(window["entry"]),
        window["context_size"],
        max_new_tokens=window["max_new_tokens"],
        eos_id=window["eos_id"],
    )


def _responses(sub, case):
    return {
        "scripted": [_scripted_response(sub.generate_response, trial) for trial in case["scripted"]],
        "window": _window_response(sub.generate_response, case["window"]),
    }


@extract_response
@split(setup=_response_case, produce=_responses)
def test_generate_response_agrees_with_reference(outputs, case, ref):
    """hidden: scripted answers with random headers, whitespace and lengths, and a windowed model"""
    expect_list(outputs["scripted"], len(case["scripted"]), "generate_response's answers")
    for trial, got in zip(case["scripted"], outputs["scripted"]):
        expect(
            got == _scripted_response(ref.generate_response, trial),
            "generate_response differs from the reference on a scripted model's answer",
        )
    expect(
        outputs["window"] == _window_response(ref.generate_response, case["window"]),
        "generate_response differs from the reference on a model with a short context",
    )
