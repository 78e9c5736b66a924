"""Hidden checks of chapter 7: the live reference against the submission on entries, batches and
scripted models drawn from the seed. Messages say what differs, never the inputs."""

from __future__ import annotations

import random

import torch

from autograder.checks.test_ch07 import (
    ALPHABET,
    IGNORE,
    PAD,
    RESPONSE_HEADER,
    ScriptedModel,
    collate,
    expected_response,
    extract_response,
    first_input_problem,
    format_input,
    instruction_dataset,
    prompt_masking,
    response_problem,
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


def _token_ids_of(item):
    """The token ids of a dataset item: the item itself, or the second of a (prompt length, ids) pair."""
    return item[1] if isinstance(item, tuple) else item


def _expect_same_items(outputs: dict, expected_dataset, count: int, what: str) -> None:
    expect(outputs["length"] == count, f"len({what}) of {count} random entries is {outputs['length']}")
    expect_list(outputs["items"], count, f"{what}'s items")
    for index, got in enumerate(outputs["items"]):
        got, expected = _comparable_item(got), expected_dataset[index]
        if got == expected:
            continue
        got_ids, expected_ids = _token_ids_of(got), list(_token_ids_of(expected))
        if (
            isinstance(got_ids, list)
            and len(got_ids) > len(expected_ids)
            and got_ids[: len(expected_ids)] == expected_ids
        ):
            fail(
                f"the token ids of {what}[{index}] go on after the entry's output: encode the text alone; "
                "custom_collate_fn appends the end-of-text token when it pads the batch"
            )
        fail(f"{what}[{index}] differs from the reference's on random entries")


def _instruction_items(sub, case, gpt2):
    entries = case["entries"]
    return _dataset_items(sub.InstructionDataset([dict(entry) for entry in entries], gpt2), len(entries))


@instruction_dataset
@split(setup=_dataset_case, produce=_instruction_items)
def test_instruction_dataset_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random entries tokenized with GPT-2's tokenizer"""
    entries = case["entries"]
    _expect_same_items(outputs, ref.InstructionDataset(entries, gpt2), len(entries), "InstructionDataset")


CUSTOM_PADS, CUSTOM_IGNORES = [30, 31, 999], [-1, -5]  # the token ids drawn are below 30
COLLATE_TRIALS = 13  # every mix of pad_token_id, ignore_index and allowed_max_length, then one one-example batch


def _batch(rng: random.Random, trial: int) -> list[list[int]]:
    """Examples of 1-12 tokens, none of them the pad token (whether a pad token an example already ends with is
    padding or text is a choice the book's mask makes one way and a length-based mask the other). Every batch but
    the last has 2-5 examples, the first of them the longest and the second shorter; the last has one example."""
    longest = rng.randint(2, 12)
    lengths = [longest] if trial == COLLATE_TRIALS - 1 else [longest, rng.randint(1, longest - 1)]
    lengths += [rng.randint(1, longest) for _ in range(rng.randint(0, 3) if len(lengths) > 1 else 0)]
    return [[rng.randrange(0, 30) for _ in range(length)] for length in lengths]


def _settings(rng: random.Random, trial: int, longest: int) -> dict:
    """The keyword arguments of trial number `trial`: across the trials every mix of a custom pad_token_id or
    not, a custom ignore_index or not, and no allowed_max_length, one that cuts the batch or one that does not."""
    settings = {}
    if trial % 2:
        settings["pad_token_id"] = rng.choice(CUSTOM_PADS)
    if trial % 4 >= 2:
        settings["ignore_index"] = rng.choice(CUSTOM_IGNORES)
    if trial % 3 == 1:
        settings["allowed_max_length"] = rng.randint(1, longest - 1)
    elif trial % 3 == 2:
        settings["allowed_max_length"] = rng.randint(longest, longest + 3)
    return settings


def _trial(rng: random.Random, trial: int) -> dict:
    batch = _batch(rng, trial)
    return {"settings": _settings(rng, trial, max(len(item) for item in batch)), "batch": batch}


def _defaults_problem(got, expected, settings: dict, what: str, advice: str) -> str | None:
    """A message when the batch holds 50256 or -100 where the reference has the pad_token_id or ignore_index given."""
    (inputs, targets), (expected_inputs, expected_targets) = got, expected
    if inputs.shape != expected_inputs.shape or targets.shape != expected_targets.shape:
        return None
    pad, ignore = settings.get("pad_token_id", PAD), settings.get("ignore_index", IGNORE)
    if pad != PAD and ((inputs == PAD) & (expected_inputs == pad)).any():
        return f"{what}: the inputs are padded with 50256, not with the pad_token_id given: {advice}"
    if ignore != IGNORE and ((targets == IGNORE) & (expected_targets == ignore)).any():
        return f"{what}: targets are -100 where the ignore_index given belongs: {advice}"
    if pad != PAD and ((targets == pad) & (expected_targets == ignore)).any():
        return (
            f"{what}: padding targets after the first are kept: find them by the pad_token_id given (not by "
            "50256) and replace them with ignore_index"
        )
    return None


def _expect_same_batch(got, expected, what: str, settings: dict, advice: str) -> None:
    expect(isinstance(got, (tuple, list)) and len(got) == 2, f"{what} should return (inputs, targets)")
    for tensor, expected_tensor, name in zip(got, expected, ("inputs", "targets")):
        expect(isinstance(tensor, torch.Tensor), f"{what}'s {name} should be a tensor")
        expect(
            tensor.shape == expected_tensor.shape,
            f"{what}: {name} of shape {tuple(tensor.shape)}, the reference's {tuple(expected_tensor.shape)}",
        )
    problem = _defaults_problem(got, expected, settings, what, advice)
    if problem:
        fail(problem)
    for tensor, expected_tensor, name in zip(got, expected, ("inputs", "targets")):
        bad = (tensor != expected_tensor).nonzero()
        if len(bad):
            row, position = bad[0].tolist()
            fail(f"{what}: {name} differ from the reference's, first at row {row}, position {position}")


def _collate_what(function_name: str, settings: dict) -> str:
    return f"{function_name} on a random batch ({', '.join(settings) or 'default arguments'})"


def _collate_case(seed):
    rng = random.Random(seed)
    return [_trial(rng, trial) for trial in range(COLLATE_TRIALS)]


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
            got,
            _collated(ref.custom_collate_fn, trial),
            _collate_what("custom_collate_fn", trial["settings"]),
            trial["settings"],
            "use the pad_token_id and ignore_index arguments, not their defaults",
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
    """The collate trials with a prompt length for every example: the first (longest) example is all prompt,
    so allowed_max_length cuts inside a prompt whenever it cuts the batch; the second has a one-token prompt,
    which masks no target."""
    rng = random.Random(seed)
    trials = []
    for index in range(COLLATE_TRIALS):
        trial = _trial(rng, index)
        batch = trial["batch"]
        lengths = [len(batch[0]), 1] + [rng.randint(1, len(item)) for item in batch[2:]]
        trial["batch"] = [(length, item) for length, item in zip(lengths, batch)]
        trials.append(trial)
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
            trial["settings"],
            "pass pad_token_id and ignore_index on to custom_collate_fn, and mask with ignore_index",
        )


# How the scripted model's answer is made, one trial of each on every seed: (what, header, where max_new_tokens
# stops it: "after" the end-of-text token, inside the "header", or inside the "answer" after the header).
RESPONSE_KINDS = [
    ("an answer after the response header", RESPONSE_HEADER, "after"),
    ("an answer after a header with no line break after it", "\n### Response:", "after"),
    ("an answer without a response header", "", "after"),
    ("an answer after the header twice", RESPONSE_HEADER + "### Response:\n", "after"),
    ("an answer cut by max_new_tokens after the header", RESPONSE_HEADER, "answer"),
    ("an answer cut by max_new_tokens inside the header", RESPONSE_HEADER, "header"),
]
ANSWER_CHARACTERS = ALPHABET.replace("|", "").replace("~", "")  # neither the end-of-text nor the off-script token
AFTER_EOS = "more"


def _scripted_trial(rng: random.Random, format_input_of, header: str, stop: str) -> dict:
    """An entry (in ALPHABET), a script that is its prompt, then a continuation (`header`, random whitespace and
    2-20 random characters), the end-of-text token and more, and a max_new_tokens that stops the answer after
    the end-of-text token, inside the header or inside the answer after the header, as `stop` says."""
    entry = _entries(rng, 1)[0]
    entry = {key: "".join(c for c in value if c in ALPHABET) or "a" for key, value in entry.items()}
    body = rng.choice(["", "  "]) + "".join(rng.choice(ANSWER_CHARACTERS) for _ in range(rng.randint(2, 20)))
    continuation = header + body + rng.choice(["", "\n", " "])
    if stop == "header":
        max_new_tokens = rng.randint(1, len(header) - 1)
    elif stop == "answer":
        max_new_tokens = len(header) + rng.randint(1, len(body) - 1)
    else:
        max_new_tokens = len(continuation) + rng.randint(1, 10)
    script = TOKENIZER.encode(format_input_of(entry) + continuation) + [SCRIPT_EOS_ID] + TOKENIZER.encode(AFTER_EOS)
    return {"entry": entry, "continuation": continuation, "script": script, "max_new_tokens": max_new_tokens}


def _response_case(ref, seed):
    rng = random.Random(seed)
    scripted = [_scripted_trial(rng, ref.format_input, header, stop) for _, header, stop in RESPONSE_KINDS]
    window = {
        "context_size": rng.randint(2, 8),
        "model_seed": seed % 1000,
        "eos_id": rng.randrange(len(ALPHABET)),
        "entry": {"instruction": "Name a color.", "input": rng.choice(["", "red"]), "output": "Red."},
        "max_new_tokens": rng.randint(5, 25),
    }
    return {"scripted": scripted, "window": window}


def _scripted_model(trial) -> ScriptedModel:
    return ScriptedModel(trial["script"], len(ALPHABET), SCRIPT_CONTEXT, OFF_SCRIPT_ID)


def _scripted_response(generate_response, trial, model=None):
    return generate_response(
        model or _scripted_model(trial),
        TOKENIZER,
        dict(trial["entry"]),
        SCRIPT_CONTEXT,
        max_new_tokens=trial["max_new_tokens"],
        eos_id=SCRIPT_EOS_ID,
    )


def _observed_scripted_response(generate_response, trial) -> dict:
    """The response, the token ids the scripted model was first given and whether it left its script."""
    model = _scripted_model(trial)
    response = _scripted_response(generate_response, trial, model)
    return {"response": response, "first_input": model.first_input, "left_script": model.left_script}


def _scripted_problem(got: str, expected: str, trial, prompt: str, what: str, left_script: bool) -> str:
    """The message for a scripted answer `got` that is not the reference's `expected`: what is wrong with it
    when that is known, never quoting the expected text."""
    continuation, max_new_tokens = trial["continuation"], trial["max_new_tokens"]
    written = continuation[:max_new_tokens]  # one token per character
    whole_answer = expected_response(continuation)
    if len(written) < len(continuation) and (
        got == whole_answer or (got.startswith(expected) and whole_answer.startswith(got))
    ):
        return f"{what} goes on after max_new_tokens tokens: pass max_new_tokens on to generate"
    past_eos = ("|" + AFTER_EOS)[: max(0, max_new_tokens - len(continuation))]
    return response_problem(got, prompt, written, past_eos, what, left_script) or (
        f"generate_response differs from the reference on {what[len('generate_response on ') :]}"
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
        "scripted": [_observed_scripted_response(sub.generate_response, trial) for trial in case["scripted"]],
        "window": _window_response(sub.generate_response, case["window"]),
    }


@extract_response
@split(setup=_response_case, produce=_responses)
def test_generate_response_agrees_with_reference(outputs, case, ref):
    """hidden: scripted answers with and without the response header, cut by max_new_tokens or not, and a
    windowed model"""
    expect_list(outputs["scripted"], len(case["scripted"]), "generate_response's answers")
    for (kind, _, _), trial, got in zip(RESPONSE_KINDS, case["scripted"], outputs["scripted"], strict=True):
        what = f"generate_response on a scripted model writing {kind}"
        expect_type(got["response"], str, "generate_response(...)")
        prompt = ref.format_input(trial["entry"])
        problem = first_input_problem(got["first_input"], TOKENIZER, prompt, what, counts=False)
        if problem:
            fail(problem)
        expected = _scripted_response(ref.generate_response, trial)
        if got["response"] != expected:
            fail(_scripted_problem(got["response"], expected, trial, prompt, what, got["left_script"]))
    expect(
        outputs["window"] == _window_response(ref.generate_response, case["window"]),
        "generate_response differs from the reference on a model with a short context",
    )
