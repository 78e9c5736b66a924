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
from autograder.compare import expect, expect_type, fail

WORDS = ["Rewrite", "the", "sentence", "Name", "a", "color", "of", "7", "12.5", "caf\u00e9", "'quoted'", "\"x\"",
         "list:", "one,", "two", "?", "!", "-->", "Give"]


def _text(rng: random.Random, max_words: int, lines: bool = False) -> str:
    separators = [" ", " ", " ", "\n"] if lines else [" "]
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, max_words))]
    return "".join(word + rng.choice(separators) for word in words[:-1]) + words[-1]


def _entries(rng: random.Random, count: int) -> list[dict]:
    return [{"instruction": _text(rng, 8), "input": _text(rng, 6, lines=True) if rng.random() < 0.6 else "",
             "output": _text(rng, 10)} for _ in range(count)]


def _first_difference(got: list, expected: list) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))


@format_input
def test_format_input_agrees_with_reference(sub, ref, seed):
    """hidden: random entries with and without inputs"""
    rng = random.Random(seed)
    for entry in _entries(rng, 8):
        got, expected = sub.format_input(dict(entry)), ref.format_input(entry)
        expect_type(got, str, "format_input(...)")
        if got != expected:
            which = "with an input" if entry["input"] else "with an empty input"
            fail(f"format_input differs from the reference on a random entry {which}, first at character "
                 f"{_first_difference(got, expected)}")


def _expect_same_items(got_dataset, expected_dataset, count: int, what: str) -> None:
    expect(len(got_dataset) == count, f"len({what}) of {count} random entries is {len(got_dataset)}")
    for index in range(count):
        got, expected = got_dataset[index], expected_dataset[index]
        if isinstance(got, tuple):
            got = (got[0], list(got[1]))
        expect(got == expected, f"{what}[{index}] differs from the reference's on random entries")


@instruction_dataset
def test_instruction_dataset_agrees_with_reference(sub, ref, seed, gpt2):
    """hidden: random entries tokenized with GPT-2's tokenizer"""
    entries = _entries(random.Random(seed), 6)
    _expect_same_items(sub.InstructionDataset([dict(e) for e in entries], gpt2), ref.InstructionDataset(entries, gpt2),
                       len(entries), "InstructionDataset")


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
        expect(tensor.shape == expected_tensor.shape, f"{what}: {name} of shape {tuple(tensor.shape)}, the "
               f"reference's {tuple(expected_tensor.shape)}")
        bad = (tensor != expected_tensor).nonzero()
        if len(bad):
            row, position = bad[0].tolist()
            fail(f"{what}: {name} differ from the reference's, first at row {row}, position {position}")


@collate
def test_collate_agrees_with_reference(sub, ref, seed):
    """hidden: random batches, pad and ignore values and allowed_max_length"""
    rng = random.Random(seed)
    for _ in range(12):
        settings = _settings(rng)
        batch = _batch(rng)
        what = f"custom_collate_fn on a random batch ({', '.join(settings) or 'default arguments'})"
        got = sub.custom_collate_fn([list(item) for item in batch], **settings)
        _expect_same_batch(got, ref.custom_collate_fn([list(item) for item in batch], **settings), what)


@prompt_masking
def test_prompt_length_dataset_agrees_with_reference(sub, ref, seed, gpt2):
    """hidden: random entries tokenized with GPT-2's tokenizer"""
    entries = _entries(random.Random(seed), 6)
    _expect_same_items(sub.InstructionDatasetWithPromptLength([dict(e) for e in entries], gpt2),
                       ref.InstructionDatasetWithPromptLength(entries, gpt2), len(entries),
                       "InstructionDatasetWithPromptLength")


@prompt_masking
def test_masked_collate_agrees_with_reference(sub, ref, seed):
    """hidden: random batches with prompts of random lengths"""
    rng = random.Random(seed)
    for _ in range(12):
        settings = _settings(rng)
        batch = [(rng.randint(1, len(item)), item) for item in _batch(rng)]
        what = f"custom_collate_fn_masked on a random batch ({', '.join(settings) or 'default arguments'})"
        got = sub.custom_collate_fn_masked([(length, list(item)) for length, item in batch], **settings)
        _expect_same_batch(got, ref.custom_collate_fn_masked([(n, list(item)) for n, item in batch], **settings), what)


@extract_response
def test_generate_response_agrees_with_reference(sub, ref, seed):
    """hidden: scripted answers with random headers, whitespace and lengths, and a windowed model"""
    rng = random.Random(seed)
    tokenizer = CharTokenizer(ALPHABET)
    eos_id = tokenizer.encode("|")[0]
    for _ in range(3):
        entry = _entries(rng, 1)[0]
        entry = {key: "".join(c for c in value if c in ALPHABET) or "a" for key, value in entry.items()}
        continuation = rng.choice([RESPONSE_HEADER, "\n### Response:", ""]) + rng.choice(["", "  "]) + \
            "".join(rng.choice(ALPHABET[:-3]) for _ in range(rng.randint(0, 20))) + rng.choice(["", "\n", " "])
        script = tokenizer.encode(ref.format_input(entry) + continuation) + [eos_id] + tokenizer.encode("more")
        max_new_tokens = rng.randint(1, 40)
        answers = [function(ScriptedModel(script, len(ALPHABET), 512, tokenizer.encode("~")[0]), tokenizer, dict(entry),
                            512, max_new_tokens=max_new_tokens, eos_id=eos_id)
                   for function in (sub.generate_response, ref.generate_response)]
        expect(answers[0] == answers[1], "generate_response differs from the reference on a scripted model's answer")
    context_size = rng.randint(2, 8)
    model = WindowLanguageModel(len(ALPHABET), context_size, seed=seed % 1000)
    eos_id = rng.randrange(len(ALPHABET))
    entry = {"instruction": "Name a color.", "input": rng.choice(["", "red"]), "output": "Red."}
    max_new_tokens = rng.randint(5, 25)
    answers = [function(model, tokenizer, dict(entry), context_size, max_new_tokens=max_new_tokens, eos_id=eos_id)
               for function in (sub.generate_response, ref.generate_response)]
    expect(answers[0] == answers[1], "generate_response differs from the reference on a model with a short context")
