"""Public checks of chapter 12: preference pairs, sequence log-probabilities, the DPO loss, the
reference model and the DPO training loop.

The dataset is compared with the recorded token ids of hand-made entries (GPT-2's tokenizer).
The collate function runs on hand-made batches of token ids (chosen or rejected the longer,
allowed_max_length inside a prompt, inside a response and beyond the batch, a pad id that also
occurs inside a response, masks with and without the prompt); its result is compared with what
padding and masking must give, so a message can name the step that went wrong. Log-probabilities
and the DPO loss are compared with their formulas, written out here (the loss as softplus, which
is -log sigmoid), on recorded random inputs, including extreme ones, and their gradients too.
The reference model and the loss of a batch run on tiny GPT models of chapter 4; the training
loop runs a short DPO training of one against the reference run recorded step by step.

Every check is split (`autograder.split`): produce calls the submission and returns what it gave
and what was observed of it (modes, flags, gradients) as data; compare decides.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from autograder.checks.modules import load_parameters, parameter_state
from autograder.checks.toy_models import TinyLanguageModel
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_list,
    expect_number,
    expect_tensor,
    expect_type,
    fail,
)
from autograder.no_dynamo import compiler_free
from autograder.split import split

preference_data = pytest.mark.ch12_preference_data
logprobs = pytest.mark.ch12_logprobs
dpo_loss = pytest.mark.ch12_dpo_loss
reference_model = pytest.mark.ch12_reference_model
train_dpo = pytest.mark.ch12_train_dpo

RESPONSE_HEADER = "\n\n### Response:\n"
LN2 = math.log(2)
SEQUENCES = ("chosen", "rejected")
BATCH_KEYS = ("chosen", "rejected", "chosen_mask", "rejected_mask")

# Entries with and without an input, a multi-line input, characters outside ASCII; chosen the longer or the shorter.
ENTRIES = [
    {
        "instruction": "Identify the correct spelling of the following word.",
        "input": "Ocassion",
        "output": "The correct spelling is 'Occasion.'",
        "chosen": "The correct spelling is 'Occasion.'",
        "rejected": "The correct spelling is obviously 'Occasion.'",
    },
    {
        "instruction": "What is an antonym of 'complicated'?",
        "input": "",
        "output": "An antonym of 'complicated' is 'simple'.",
        "chosen": "A suitable antonym for 'complicated' would be 'simple'.",
        "rejected": "An antonym of 'complicated' is 'simple'.",
    },
    {
        "instruction": "Sort the numbers in ascending order.",
        "input": "7, 3, 12\n5, 1",
        "output": "1, 3, 5, 7, 12",
        "chosen": "Here they are in order: 1, 3, 5, 7, 12.",
        "rejected": "1, 3, 5, 7, 12. Easy.",
    },
    {
        "instruction": "Translate the greeting into French.",
        "input": "Good morning, caf\u00e9 owner!",
        "output": "Bonjour, propri\u00e9taire du caf\u00e9 !",
        "chosen": "Bonjour, propri\u00e9taire du caf\u00e9 !",
        "rejected": "Obviously: Bonjour, propri\u00e9taire du caf\u00e9 !",
    },
    {
        "instruction": "List two primary colors.",
        "input": "",
        "output": "Red and blue.",
        "chosen": "\n\nTwo primary colors are red and blue.",
        "rejected": "Red, blue. Obviously.",
    },
]


def pair(prompt: list[int], chosen: list[int], rejected: list[int]) -> dict:
    """A PreferenceDataset item from the prompt's ids and the ids of each response alone."""
    return {"prompt": list(prompt), "chosen": list(prompt) + list(chosen), "rejected": list(prompt) + list(rejected)}


# Hand-made batches for custom_collate_fn: (description, items, keyword arguments).
COLLATE_CASES = [
    (
        "a batch whose chosen sequences are the longer",
        [pair([1, 2, 3], [4, 5, 6, 7], [8]), pair([9, 10], [11, 12], [13])],
        {},
    ),
    (
        "a batch whose rejected sequence is the longest",
        [pair([1, 2], [3], [4, 5, 6, 7, 8]), pair([9, 10, 11, 12], [13, 14], [15])],
        {},
    ),
    ("one pair of equal lengths", [pair([5, 6, 7], [8, 9], [10, 11])], {}),
    (
        "allowed_max_length inside the responses",
        [pair([1, 2, 3], [4, 5, 6, 7], [8]), pair([9, 10], [11, 12, 13], [14, 15])],
        {"allowed_max_length": 5},
    ),
    (
        "allowed_max_length inside a prompt",
        [pair([1, 2, 3, 4, 5, 6], [7, 8], [9]), pair([10, 11], [12, 13, 14], [15])],
        {"allowed_max_length": 4},
    ),
    (
        "allowed_max_length longer than the batch",
        [pair([1, 2], [3, 4, 5], [6]), pair([7], [8, 9], [10, 11, 12])],
        {"allowed_max_length": 12},
    ),
    (
        "a pad_token_id that also occurs inside a response",
        [pair([3, 4], [0, 5, 0], [6]), pair([7, 8, 9], [10], [0, 0])],
        {"pad_token_id": 0},
    ),
    (
        "mask_prompt_tokens=False",
        [pair([1, 2, 3], [4, 5], [6, 7, 8, 9]), pair([10, 11], [12], [13, 14])],
        {"mask_prompt_tokens": False},
    ),
    (
        "an empty response and custom values",
        [pair([1, 2, 3], [], [4, 5]), pair([6, 7], [8, 9, 10], [11])],
        {"pad_token_id": 2, "allowed_max_length": 4},
    ),
]


def full_texts(entry: dict, prompt: str) -> dict:
    """The three texts of an entry whose format_input is `prompt`."""
    text = prompt + RESPONSE_HEADER
    return {"prompt": text, "chosen": text + entry["chosen"], "rejected": text + entry["rejected"]}


def expected_collate(items: list[dict], kwargs: dict) -> dict:
    """What custom_collate_fn must give: the four tensors of the batch (the prompts are compared apart)."""
    pad = kwargs.get("pad_token_id", 50256)
    limit = kwargs.get("allowed_max_length")
    mask_prompt = kwargs.get("mask_prompt_tokens", True)
    width = max(len(item[key]) for item in items for key in SEQUENCES)
    expected = {}
    for key in SEQUENCES:
        ids = torch.tensor([item[key] + [pad] * (width - len(item[key])) for item in items], dtype=torch.long)
        start = [len(item["prompt"]) if mask_prompt else 0 for item in items]
        mask = torch.tensor(
            [[start[row] <= i < len(item[key]) for i in range(width)] for row, item in enumerate(items)],
            dtype=torch.bool,
        )
        expected[key], expected[f"{key}_mask"] = (ids, mask) if limit is None else (ids[:, :limit], mask[:, :limit])
    return expected


# ---------------------------------------------------------------- ch12.preference_data


def _dataset_items(sub, gpt2) -> dict:
    """Produce: len(PreferenceDataset(ENTRIES, gpt2)) and its items; the items only when the length is right."""
    dataset = sub.PreferenceDataset([dict(entry) for entry in ENTRIES], gpt2)
    length = len(dataset)
    expect(length == len(ENTRIES), f"len(PreferenceDataset of {len(ENTRIES)} entries) is {length}")
    items = []
    for index in range(len(ENTRIES)):
        item = dataset[index]
        expect_type(item, dict, f"PreferenceDataset(...)[{index}]")
        items.append({key: item.get(key) for key in ("prompt", *SEQUENCES)})
    return {"length": length, "items": items}


def _expect_item(got: dict, expected: dict, texts: dict, gpt2, index: int) -> None:
    what = f"PreferenceDataset(...)[{index}]"
    for key in ("prompt", *SEQUENCES):
        ids = got[key]
        if ids is None:
            fail(f'{what} has no key "{key}": each item is a dict with "prompt", "chosen" and "rejected"')
        if isinstance(ids, torch.Tensor):
            fail(f'{what}["{key}"] is a tensor; keep lists of token ids (the collate function pads lists)')
        expect_type(ids, list, f'{what}["{key}"]')
    if got["chosen"] == expected["rejected"] and got["rejected"] == expected["chosen"]:
        fail(f'{what}: "chosen" and "rejected" are swapped')
    if got["prompt"] == gpt2.encode(texts["prompt"][: -len(RESPONSE_HEADER)]):
        fail(
            f'{what}["prompt"] stops before the response header: the prompt text is format_input(entry) + '
            '"\\n\\n### Response:\\n", everything before the response'
        )
    for key in ("prompt", *SEQUENCES):
        if got[key] == expected[key]:
            continue
        text = gpt2.decode(got[key]) if all(isinstance(i, int) for i in got[key]) else None
        if text is not None and key != "prompt" and text.startswith(texts["prompt"]):
            fail(
                f'{what}["{key}"] decodes to the prompt text followed by {text[len(texts["prompt"]) :]!r}; '
                f'expected the prompt text followed by entry["{key}"]'
            )
        if text is not None and key != "prompt" and not text.startswith(texts["prompt"]):
            fail(
                f'{what}["{key}"] does not start with the prompt text: encode format_input(entry) + '
                f'"\\n\\n### Response:\\n" + entry["{key}"]'
            )
        fail(
            f'{what}["{key}"] decodes to the right text but holds other token ids: encode the whole text in one call '
            "(encoding the prompt and the response apart and joining the ids splits the text differently)"
        )


@preference_data
@split(produce=_dataset_items)
def test_preference_dataset_items_are_the_tokenized_texts(outputs, recorded, gpt2):
    """item i holds the token ids of the prompt text, and of it followed by the chosen and the rejected response"""
    expect(
        outputs["length"] == len(ENTRIES), f"len(PreferenceDataset of {len(ENTRIES)} entries) is {outputs['length']}"
    )
    expect_list(outputs["items"], len(ENTRIES), "the PreferenceDataset items")
    for index, (got, entry) in enumerate(zip(outputs["items"], ENTRIES, strict=True)):
        texts = full_texts(entry, recorded["prompts"][index])
        _expect_item(got, recorded["items"][index], texts, gpt2, index)


class CountingTokenizer:
    """Wraps a tokenizer and counts the calls of encode."""

    def __init__(self, tokenizer):
        self.tokenizer, self.encode_calls = tokenizer, 0

    def encode(self, text: str, **kwargs) -> list[int]:
        self.encode_calls += 1
        return self.tokenizer.encode(text, **kwargs)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(ids)


def _encode_calls(sub, gpt2) -> dict:
    """Produce: the encode calls while the dataset is built and while its items are read."""
    tokenizer = CountingTokenizer(gpt2)
    dataset = sub.PreferenceDataset([dict(entry) for entry in ENTRIES], tokenizer)
    built = tokenizer.encode_calls
    for index in range(len(ENTRIES)):
        dataset[index]
    encoded = getattr(dataset, "encoded_texts", None)
    return {
        "built": built,
        "read": tokenizer.encode_calls - built,
        "encoded_count": None if encoded is None else len(encoded),
    }


@preference_data
@split(produce=_encode_calls)
def test_preference_dataset_tokenizes_once_when_built(outputs):
    """encoded_texts holds one dict per entry after __init__; __getitem__ does not call the tokenizer"""
    expect(
        outputs["built"] >= len(ENTRIES),
        f"building the dataset of {len(ENTRIES)} entries called tokenizer.encode {outputs['built']} times: "
        "tokenize every entry in __init__",
    )
    expect(
        outputs["encoded_count"] is not None,
        "PreferenceDataset has no attribute encoded_texts: keep the token ids there",
    )
    expect(
        outputs["encoded_count"] == len(ENTRIES),
        f"encoded_texts has {outputs['encoded_count']} items for {len(ENTRIES)} entries",
    )
    expect(
        outputs["read"] == 0,
        "PreferenceDataset.__getitem__ calls tokenizer.encode: return the token ids encoded in __init__",
    )


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in kwargs.items()) or "default arguments"


def collate_what(description: str, kwargs: dict) -> str:
    return f"custom_collate_fn on {description} ({_kwargs_text(kwargs)})"


def collated(custom_collate_fn, items: list[dict], kwargs: dict, what: str) -> dict:
    """Produce: custom_collate_fn on copies of `items`: its dict's prompts and four tensors, and the items after."""
    copies = [{key: list(ids) for key, ids in item.items()} for item in items]
    result = custom_collate_fn(copies, **kwargs)
    expect_type(result, dict, f"{what}'s result")
    missing = [key for key in ("prompt", *BATCH_KEYS) if key not in result]
    if missing:
        fail(
            f'{what} returned a dict without "{missing[0]}": the keys are "prompt", "chosen", "rejected", '
            '"chosen_mask" and "rejected_mask"'
        )
    prompts = result["prompt"]
    expect(isinstance(prompts, (list, tuple)), f'{what}: "prompt" should be a list of tensors, one per pair')
    return {
        "items_after": copies,
        "prompt": list(prompts),
        **{key: result[key] for key in BATCH_KEYS},
    }


def _first_difference(got: torch.Tensor, expected: torch.Tensor) -> tuple[int, int]:
    row, position = (got != expected).nonzero()[0].tolist()
    return row, position


def _expect_mask(got, expected: torch.Tensor, items: list[dict], key: str, kwargs: dict, what: str) -> None:
    name = f'{what}: "{key}_mask"'
    expect_tensor(got, name, shape=tuple(expected.shape))
    if got.dtype != torch.bool:
        fail(f"{name} has dtype {got.dtype}; a mask is a bool tensor (True at the response tokens)")
    if torch.equal(got, expected):
        return
    row, position = _first_difference(got, expected)
    item = items[row]
    prompt_length, length = len(item["prompt"]), len(item[key])
    pad = kwargs.get("pad_token_id", 50256)
    if got[row, position] and position >= length:
        fail(f"{name}: row {row} is True at position {position}, which is padding: padding is never selected")
    if got[row, position] and position < prompt_length:
        if position == prompt_length - 1 and not got[row, : prompt_length - 1].any():
            fail(f"{name}: row {row} starts one position early, at the last prompt token ({position})")
        fail(
            f"{name}: row {row} is True at position {position}, inside the prompt ({prompt_length} tokens): "
            "only the response tokens are selected"
        )
    if not got[row, position] and item[key][position] == pad:
        fail(
            f"{name}: row {row} is False at position {position}, a response token that happens to equal "
            "pad_token_id: find the padding by the sequence lengths, not by comparing with pad_token_id"
        )
    if not got[row, position] and position == prompt_length and position + 1 < length and got[row, position + 1]:
        fail(f"{name}: row {row} starts one position late: the first response token is at len(prompt) = {position}")
    if not got[row, position] and position < prompt_length:
        fail(f"{name}: row {row} is False at position {position} of the prompt although mask_prompt_tokens is False")
    fail(f"{name}: row {row}, position {position} should be {bool(expected[row, position])}")


def expect_collated(got: dict, items: list[dict], kwargs: dict, what: str) -> None:
    """Compare: `got` (`collated`) is what padding and masking must make of `items`."""
    expect(got["items_after"] == items, f"{what} changed the token-id lists of its batch: pad copies of them")
    expected = expected_collate(items, kwargs)
    limit = kwargs.get("allowed_max_length")
    for key in SEQUENCES:
        expect_tensor(got[key], f'{what}: "{key}"')
    full = max(len(item[key]) for item in items for key in SEQUENCES)
    chosen, rejected = got["chosen"], got["rejected"]
    if chosen.dim() == 2 and rejected.dim() == 2 and chosen.shape[1] != rejected.shape[1]:
        fail(
            f'{what}: "chosen" has {chosen.shape[1]} positions but "rejected" {rejected.shape[1]}: pad both to one '
            "common length, the longest chosen or rejected sequence of the batch"
        )
    width = expected["chosen"].shape[1]
    if chosen.dim() == 2 and chosen.shape[1] == width + 1:
        fail(f"{what}: {width + 1} positions, expected {width}: pad to the longest sequence, without an extra token")
    if limit is not None and limit < full and chosen.dim() == 2 and chosen.shape[1] == full:
        fail(f"{what}: {full} positions although allowed_max_length={limit}: keep the first allowed_max_length")
    for key in SEQUENCES:
        name = f'{what}: "{key}"'
        expect_tensor(got[key], name, shape=tuple(expected[key].shape))
        if got[key].dtype != torch.int64:
            fail(f"{name} has dtype {got[key].dtype}; token ids are int64")
        if not torch.equal(got[key], expected[key]):
            row, position = _first_difference(got[key], expected[key])
            if position >= len(items[row][key]) and got[key][row, position] == 50256:
                fail(f"{name}: row {row} is padded with 50256: use the pad_token_id argument")
            expect_equal_tensor(got[key], expected[key], name)
    for key in SEQUENCES:
        _expect_mask(got[f"{key}_mask"], expected[f"{key}_mask"], items, key, kwargs, what)
    expect_list(got["prompt"], len(items), f'{what}: "prompt"')
    for row, (prompt, item) in enumerate(zip(got["prompt"], items, strict=True)):
        expect_equal_tensor(prompt, torch.tensor(item["prompt"], dtype=torch.long), f'{what}: "prompt"[{row}]')


def _collated_cases(sub, indices: list[int]) -> list[dict]:
    return [
        collated(sub.custom_collate_fn, COLLATE_CASES[i][1], COLLATE_CASES[i][2], collate_what(*COLLATE_CASES[i][::2]))
        for i in indices
    ]


def _expect_collated_cases(outputs, indices: list[int]) -> None:
    expect_list(outputs, len(indices), "the custom_collate_fn results")
    for index, got in zip(indices, outputs, strict=True):
        description, items, kwargs = COLLATE_CASES[index]
        expect_collated(got, items, kwargs, collate_what(description, kwargs))


def _cases(*words: str) -> list[int]:
    return [i for i, (description, _, _) in enumerate(COLLATE_CASES) if any(word in description for word in words)]


_PADDING_CASES = _cases("longer", "longest", "equal lengths")
_TRUNCATING_CASES = _cases("allowed_max_length")
_MASKING_CASES = _cases("pad_token_id", "mask_prompt_tokens", "empty response")


def _padded(sub):
    return _collated_cases(sub, _PADDING_CASES)


@preference_data
@split(produce=_padded)
def test_collate_pads_both_sides_to_one_length_and_masks_the_responses(outputs):
    """chosen and rejected padded to the longest of either; masks True at the response tokens only"""
    _expect_collated_cases(outputs, _PADDING_CASES)


def _truncated(sub):
    return _collated_cases(sub, _TRUNCATING_CASES)


@preference_data
@split(produce=_truncated)
def test_collate_honours_allowed_max_length(outputs):
    """allowed_max_length cuts ids and masks after padding, inside a prompt too; a longer one changes nothing"""
    _expect_collated_cases(outputs, _TRUNCATING_CASES)


def _masked(sub):
    return _collated_cases(sub, _MASKING_CASES)


@preference_data
@split(produce=_masked)
def test_collate_masks_by_length_with_any_pad_id_and_optionally_the_prompt(outputs):
    """a pad id inside a response stays selected; mask_prompt_tokens=False selects the prompt; an empty response
    selects nothing"""
    _expect_collated_cases(outputs, _MASKING_CASES)


def _devices(sub):
    """Produce: the devices of custom_collate_fn's tensors with device="meta" (PyTorch's data-less device)."""
    result = sub.custom_collate_fn(COLLATE_CASES[0][1], device="meta")
    expect_type(result, dict, "custom_collate_fn's result")
    devices = {key: str(getattr(result.get(key), "device", None)) for key in BATCH_KEYS}
    devices["prompt"] = [str(getattr(prompt, "device", None)) for prompt in result.get("prompt", [])]
    return devices


@preference_data
@split(produce=_devices)
def test_collate_puts_every_tensor_on_the_device(outputs):
    """device= moves the ids, the masks and the prompts"""
    for key in BATCH_KEYS:
        expect(outputs[key] == "meta", f'custom_collate_fn(..., device="meta"): "{key}" is on {outputs[key]}')
    expect_list(outputs["prompt"], len(COLLATE_CASES[0][1]), 'custom_collate_fn(..., device="meta")["prompt"]')
    expect(
        all(device == "meta" for device in outputs["prompt"]),
        'custom_collate_fn(..., device="meta"): the prompts are not on the device',
    )


# ---------------------------------------------------------------- ch12.logprobs


def token_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch, num_tokens - 1): the log-probability of labels[:, t] under the logits at t - 1, in float64."""
    log_probs = logits.double()[:, :-1].log_softmax(dim=-1)
    return log_probs.gather(-1, labels[:, 1:].unsqueeze(-1)).squeeze(-1)


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The summed log-probability of the selected tokens of every sequence: the course's definition."""
    per_token = token_logprobs(logits, labels)
    if mask is None:
        return per_token.sum(-1)
    return (per_token * mask[:, 1:].double()).sum(-1)


def logprob_mistakes(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None) -> list:
    """(description, value) of mistakes whose output can be told from the inputs alone."""
    per_token = token_logprobs(logits, labels)
    kept = torch.ones_like(per_token) if mask is None else mask[:, 1:].double()
    unshifted = logits.double().log_softmax(-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    mistakes = [
        ("averages the selected log-probabilities instead of summing them", (per_token * kept).sum(-1) / kept.sum(-1)),
        (
            "does not shift: the logits at position t score the token at t itself, not the one at t + 1",
            (unshifted[:, 1:] * kept).sum(-1),
        ),
        ("sums probabilities, not log-probabilities", (per_token.exp() * kept).sum(-1)),
    ]
    if mask is not None:
        mistakes += [
            ("ignores selection_mask: the prompt and the padding are counted too", per_token.sum(-1)),
            (
                "applies the mask without shifting it like the labels (use selection_mask[:, 1:])",
                (per_token * mask[:, :-1].double()).sum(-1),
            ),
        ]
    return mistakes


def expect_logprobs(got, logits: torch.Tensor, labels: torch.Tensor, mask, what: str, atol: float = 1e-4) -> None:
    """Compare: `got` is the summed log-probability of the selected tokens, or a message names the mistake."""
    expected = sequence_logprobs(logits, labels, mask)
    expect_tensor(got, what)
    if tuple(got.shape) == (labels.shape[0], labels.shape[1] - 1):
        fail(f"{what} has shape {tuple(got.shape)}: one log-probability per token; sum over the tokens")
    expect_tensor(got, what, shape=tuple(expected.shape))
    if not torch.isfinite(got).all():
        fail(f"{what} holds inf or nan: use log_softmax (log(softmax(x)) underflows for large logits)")
    if not torch.allclose(got.double(), expected, atol=atol, rtol=1e-5):
        for description, value in logprob_mistakes(logits, labels, mask):
            if torch.allclose(got.double(), value, atol=atol, rtol=1e-5):
                fail(f"{what} {description}")
    expect_close(got, expected, what, atol=atol)


def logprobs_of(compute_logprobs, case: dict, with_grad: bool = False) -> dict:
    """Produce: compute_logprobs on the case (and the gradient of a weighted sum of it w.r.t. the logits)."""
    logits = case["logits"].clone().requires_grad_(with_grad)
    mask = case.get("mask")
    got = compute_logprobs(logits, case["labels"].clone(), None if mask is None else mask.clone())
    result = {"logprobs": got}
    if with_grad:
        expect(
            isinstance(got, torch.Tensor) and got.requires_grad,
            "compute_logprobs returned no gradient path to the logits: compute it with torch operations on them",
        )
        if got.shape == case["weights"].shape:
            (got * case["weights"]).sum().backward()
        result["grad"] = logits.grad
    return result


def _logprob_cases(recorded) -> list[dict]:
    return recorded["logprobs"]


def _logprobs_with_masks(sub, recorded):
    return [logprobs_of(sub.compute_logprobs, case) for case in _logprob_cases(recorded) if "mask" in case]


@logprobs
@split(produce=_logprobs_with_masks)
def test_compute_logprobs_sums_the_selected_shifted_tokens(outputs, recorded):
    """sum over the response tokens of log_softmax of the shifted logits, with bool and 0/1 masks"""
    cases = [case for case in _logprob_cases(recorded) if "mask" in case]
    expect_list(outputs, len(cases), "the compute_logprobs results")
    for got, case in zip(outputs, cases, strict=True):
        expect_logprobs(got["logprobs"], case["logits"], case["labels"], case["mask"], case["what"])


def _logprobs_without_mask(sub, recorded):
    return [logprobs_of(sub.compute_logprobs, case) for case in _logprob_cases(recorded) if "mask" not in case]


@logprobs
@split(produce=_logprobs_without_mask)
def test_compute_logprobs_without_a_mask_sums_every_shifted_token(outputs, recorded):
    """without selection_mask every position t >= 1 counts; large logits stay finite"""
    cases = [case for case in _logprob_cases(recorded) if "mask" not in case]
    expect_list(outputs, len(cases), "the compute_logprobs results")
    for got, case in zip(outputs, cases, strict=True):
        expect_logprobs(got["logprobs"], case["logits"], case["labels"], None, case["what"])


def _logprob_gradient(sub, recorded):
    return logprobs_of(sub.compute_logprobs, recorded["logprob_gradient"], with_grad=True)


@logprobs
@split(produce=_logprob_gradient)
def test_compute_logprobs_gradient_reaches_the_logits(outputs, recorded):
    """the gradient w.r.t. the logits is softmax - one_hot at the selected positions and zero elsewhere"""
    case = recorded["logprob_gradient"]
    expect_logprobs(outputs["logprobs"], case["logits"], case["labels"], case["mask"], case["what"])
    grad = outputs["grad"]
    expect(grad is not None, "no gradient reached the logits")
    expect_close(grad, case["grad"], "the gradient of compute_logprobs w.r.t. the logits", atol=1e-5)


# ---------------------------------------------------------------- ch12.dpo_loss


def dpo_formula(case: dict) -> dict:
    """The DPO loss written out independently: softplus(-x) = -log sigmoid(x), in float64; and the rewards."""
    policy_c, policy_r, reference_c, reference_r = (case[key].double() for key in LOGPROB_KEYS)
    beta = case["beta"]
    margin = (policy_c - policy_r) - (reference_c - reference_r)
    return {
        "losses": torch.nn.functional.softplus(-beta * margin),
        "chosen": beta * (policy_c - reference_c),
        "rejected": beta * (policy_r - reference_r),
        "margin": margin,
    }


LOGPROB_KEYS = ("model_chosen", "model_rejected", "reference_chosen", "reference_rejected")


def dpo_loss_of(compute_dpo_loss, case: dict) -> dict:
    """Produce: compute_dpo_loss on the case's four log-probabilities (leaves that require grad) and beta; the
    loss, the rewards, whether they require grad, and the gradients of the loss."""
    inputs = [case[key].clone().requires_grad_(True) for key in LOGPROB_KEYS]
    result = compute_dpo_loss(*inputs, beta=case["beta"])
    expect(
        isinstance(result, (tuple, list)) and len(result) == 3,
        "compute_dpo_loss should return (loss, chosen_rewards, rejected_rewards)",
    )
    loss, chosen, rejected = result
    expect_tensor(loss, "the DPO loss")
    outputs = {
        "loss": loss,
        "chosen": chosen,
        "rejected": rejected,
        "rewards_require_grad": [bool(getattr(r, "requires_grad", False)) for r in (chosen, rejected)],
        "grads": None,
    }
    if loss.requires_grad and loss.numel() == 1:
        loss.sum().backward()
        outputs["grads"] = [tensor.grad for tensor in inputs]
    return outputs


def _loss_mistakes(case: dict) -> list:
    beta, formula = case["beta"], dpo_formula(case)
    margin = formula["margin"]
    softplus = torch.nn.functional.softplus
    mistakes = [
        ("sums the losses over the batch instead of averaging them", formula["losses"].sum()),
        ("has the wrong sign: it rewards the rejected response", softplus(beta * margin).mean()),
        ("multiplies by beta outside the log-sigmoid instead of inside", (beta * softplus(-margin)).mean()),
        (
            "adds the reference log-ratio instead of subtracting it",
            softplus(-beta * (margin + 2 * _ref_ratio(case))).mean(),
        ),
        ("averages the sigmoid before the log", -torch.log(torch.sigmoid(beta * margin).mean())),
    ]
    if beta != 0.1:
        mistakes.append(("ignores beta (always 0.1)", softplus(-0.1 * margin).mean()))
    if beta != 1.0:
        mistakes.append(("leaves beta out of the loss", softplus(-margin).mean()))
    return mistakes


def _ref_ratio(case: dict) -> torch.Tensor:
    return case["reference_chosen"].double() - case["reference_rejected"].double()


def expect_dpo_loss(outputs: dict, case: dict, what: str, atol: float = 1e-5) -> None:
    """Compare: `outputs` (`dpo_loss_of`) are the loss and rewards of the formula, or a message names the mistake."""
    formula = dpo_formula(case)
    loss = outputs["loss"]
    expect_tensor(loss, f"the DPO loss on {what}")
    if loss.numel() == case["model_chosen"].numel() and loss.dim() == 1:
        fail(f"the DPO loss on {what} has shape {tuple(loss.shape)}: average the per-example losses over the batch")
    expect(loss.dim() == 0, f"the DPO loss on {what} has shape {tuple(loss.shape)}; expected a 0-dim tensor")
    if not torch.isfinite(loss):
        fail(f"the DPO loss on {what} is {loss.item()}: use F.logsigmoid, log(sigmoid(x)) underflows to log(0)")
    expected = formula["losses"].mean()
    if not math.isclose(loss.item(), expected.item(), rel_tol=1e-5, abs_tol=atol):
        for description, value in _loss_mistakes(case):
            if math.isclose(loss.item(), value.item(), rel_tol=1e-5, abs_tol=atol):
                fail(f"the DPO loss on {what} {description}")
    expect_close(loss.reshape(()), expected, f"the DPO loss on {what}", atol=atol)
    for name in SEQUENCES:
        reward = outputs[name]
        expect_tensor(reward, f"the {name} rewards on {what}")
        if reward.dim() == 0:
            fail(f"the {name} rewards on {what} are one number: return one reward per example, (batch,)")
        other = "rejected" if name == "chosen" else "chosen"
        if torch.allclose(reward.double(), formula[other], atol=atol) and not torch.allclose(
            formula[other], formula[name], atol=atol
        ):
            fail(f"the {name} rewards on {what} are the {other} ones: chosen and rejected rewards swapped")
        unscaled = formula[name] / case["beta"]
        if not torch.allclose(unscaled, formula[name], atol=atol) and torch.allclose(
            reward.double(), unscaled, atol=atol
        ):
            fail(f"the {name} rewards on {what} lack the factor beta: reward = beta * (model - reference)")
        expect_close(reward, formula[name], f"the {name} rewards on {what}", atol=atol)
    if any(outputs["rewards_require_grad"]):
        fail(f"the rewards on {what} require grad: detach them (they are for monitoring, not for the gradient)")


def _dpo_cases(recorded, kind: str) -> list[dict]:
    return [case for case in recorded["dpo"] if case["kind"] == kind]


def _dpo_outputs(sub, recorded, kind: str) -> list[dict]:
    return [dpo_loss_of(sub.compute_dpo_loss, case) for case in _dpo_cases(recorded, kind)]


def _expect_dpo_cases(outputs, recorded, kind: str) -> list[dict]:
    cases = _dpo_cases(recorded, kind)
    expect_list(outputs, len(cases), "the compute_dpo_loss results")
    for got, case in zip(outputs, cases, strict=True):
        expect_dpo_loss(got, case, case["what"])
    return cases


def _random_losses(sub, recorded):
    return _dpo_outputs(sub, recorded, "random")


@dpo_loss
@split(produce=_random_losses)
def test_dpo_loss_matches_the_formula_for_several_betas(outputs, recorded):
    """mean of -logsigmoid(beta * log-ratio difference) and the rewards beta * (model - reference), detached"""
    _expect_dpo_cases(outputs, recorded, "random")


def _equal_losses(sub, recorded):
    return _dpo_outputs(sub, recorded, "equal")


@dpo_loss
@split(produce=_equal_losses)
def test_dpo_loss_is_ln2_when_the_policy_equals_the_reference(outputs, recorded):
    """a policy equal to its reference: loss exactly ln 2, rewards 0, for any log-probabilities and beta"""
    cases = _dpo_cases(recorded, "equal")
    expect_list(outputs, len(cases), "the compute_dpo_loss results")
    for got, case in zip(outputs, cases, strict=True):
        loss = got["loss"]
        expect(loss.numel() == 1, f"the DPO loss on {case['what']} should be one number")
        expect(
            abs(loss.item() - LN2) < 1e-6,
            f"the DPO loss on {case['what']} is {loss.item():.6f}; with the policy equal to the reference it is "
            f"-log sigmoid(0) = ln 2 = {LN2:.6f}",
        )
        expect_dpo_loss(got, case, case["what"])


def _extreme_losses(sub, recorded):
    return _dpo_outputs(sub, recorded, "extreme")


@dpo_loss
@split(produce=_extreme_losses)
def test_dpo_loss_is_finite_at_extreme_logprobs(outputs, recorded):
    """log-ratio differences of thousands of nats on either side give finite losses (F.logsigmoid, not log(sigmoid))"""
    _expect_dpo_cases(outputs, recorded, "extreme")


def _gradient_losses(sub, recorded):
    return _dpo_outputs(sub, recorded, "gradient")


@dpo_loss
@split(produce=_gradient_losses)
def test_dpo_loss_gradient_raises_chosen_and_lowers_rejected(outputs, recorded):
    """d loss / d model_chosen = -beta sigmoid(-beta x) / n (gradient descent raises it), the opposite for rejected"""
    cases = _expect_dpo_cases(outputs, recorded, "gradient")
    for got, case in zip(outputs, cases, strict=True):
        grads = got["grads"]
        expect(grads is not None, f"the DPO loss on {case['what']} has no gradient: keep it a tensor of the inputs")
        expect_list(grads, 4, "the gradients of the four inputs")
        formula = dpo_formula(case)
        weight = case["beta"] * torch.sigmoid(-case["beta"] * formula["margin"]) / formula["margin"].numel()
        for grad, key, sign in zip(grads, LOGPROB_KEYS, (-1, 1, 1, -1), strict=True):
            expect(grad is not None, f"no gradient reached {key}_logprobs on {case['what']}")
            if key == "model_chosen" and (grad > 0).all():
                fail(f"on {case['what']} gradient descent lowers the chosen log-probabilities: check the sign")
            expect_close(grad, sign * weight, f"the gradient w.r.t. {key}_logprobs on {case['what']}", atol=1e-6)


# ---------------------------------------------------------------- ch12.reference_model

TINY_GPT = {
    "vocab_size": 17,
    "context_length": 12,
    "emb_dim": 8,
    "n_heads": 2,
    "n_layers": 1,
    "drop_rate": 0.0,
    "qkv_bias": False,
}


def toy_items(count: int, vocab_size: int, generator: torch.Generator, prompt_tokens: int = 3) -> list[dict]:
    """Preference items over token ids with a style a tiny model can learn: after a random prompt, the chosen
    response is token 1 repeated 1 to 3 times, the rejected one token 2, each followed by one random token."""
    items = []
    for _ in range(count):
        prompt = torch.randint(0, vocab_size, (prompt_tokens,), generator=generator).tolist()
        lengths = torch.randint(1, 4, (2,), generator=generator).tolist()
        tail = torch.randint(0, vocab_size, (1,), generator=generator).tolist()
        items.append(pair(prompt, [1] * lengths[0] + tail, [2] * lengths[1] + tail))
    return items


def gpt_model(cfg: dict, state: dict | None = None, seed: int | None = None) -> nn.Module:
    """Chapter 4's GPTModel with `cfg`, holding `state` when given (else drawn from `seed`)."""
    from previous_chapters import GPTModel

    if seed is not None:
        torch.manual_seed(seed)
    model = GPTModel(dict(cfg))
    return model if state is None else load_parameters(model, state, "the GPT model")


def batch_tensors(batch: dict) -> dict:
    """Copies of a collated batch's four tensors (what compute_dpo_loss_batch reads)."""
    return {key: batch[key].clone() for key in BATCH_KEYS}


def reference_observed(create_reference_model, cfg: dict, state: dict, x: torch.Tensor) -> dict:
    """Produce: a policy in train mode (with dropout) and the reference made from it: identity, shared
    storage, flags and modes, the reference's state, and its output twice."""
    policy = gpt_model(cfg, state).train()
    reference = create_reference_model(policy)
    expect(isinstance(reference, nn.Module), f"create_reference_model returned a {type(reference).__name__}")
    policy_pointers = {param.data_ptr() for param in policy.parameters()}
    torch.manual_seed(0)  # a reference left in train mode then drops the same units in every run
    with torch.no_grad():
        outputs = [reference(x) for _ in range(2)]
    return {
        "same_object": reference is policy,
        "shares_storage": any(param.data_ptr() in policy_pointers for param in reference.parameters()),
        "reference_requires_grad": [param.requires_grad for param in reference.parameters()],
        "reference_training": [module.training for module in reference.modules()],
        "policy_requires_grad": [param.requires_grad for param in policy.parameters()],
        "policy_training": [module.training for module in policy.modules()],
        "reference_state": parameter_state(reference),
        "outputs": outputs,
    }


def expect_frozen_copy(got: dict, state: dict, what: str) -> None:
    """Compare: `got` (`reference_observed`) is an independent frozen copy in eval mode; the policy unchanged."""
    expect(not got["same_object"], f"{what} returned the policy itself: make a copy.deepcopy of it")
    expect(
        not got["shares_storage"],
        f"{what} shares parameter tensors with the policy (a shallow copy): training the policy would move the "
        "reference too; use copy.deepcopy",
    )
    expect(
        all(got["policy_requires_grad"]),
        f"{what} froze the policy's parameters too: set requires_grad = False on the copy only",
    )
    expect(all(got["policy_training"]), f"{what} put the policy in eval mode: call .eval() on the copy only")
    expect(
        not any(got["reference_requires_grad"]),
        f"{what}: {sum(got['reference_requires_grad'])} of the reference's parameters still require grad",
    )
    expect(
        not any(got["reference_training"]),
        f"{what}: the reference is in train mode (dropout on): put it in eval mode",
    )
    reference_state = got["reference_state"]
    expect(
        isinstance(reference_state, dict) and set(reference_state) == set(state),
        f"{what}: the reference has other parameters than the policy",
    )
    for name, tensor in state.items():
        expect_close(reference_state[name], tensor, f"{what}: the reference's {name}", atol=0)
    expect_list(got["outputs"], 2, "the reference's outputs")
    expect_close(got["outputs"][1], got["outputs"][0], f"{what}: the reference's output, called twice", atol=0)


def _frozen_copy(sub, recorded):
    case = recorded["reference"]
    return reference_observed(sub.create_reference_model, case["cfg"], case["state"], case["x"])


@reference_model
@split(produce=_frozen_copy)
def test_create_reference_model_is_an_independent_frozen_copy_in_eval_mode(outputs, recorded):
    """a deep copy with the same weights, requires_grad False, eval mode; the policy stays trainable in train mode"""
    expect_frozen_copy(outputs, recorded["reference"]["state"], "create_reference_model(policy)")


def reference_after_training(create_reference_model, cfg: dict, state: dict, x: torch.Tensor, steps: int) -> dict:
    """Produce: the reference's parameters after `steps` AdamW steps on the policy it was made from (all of the
    policy's parameters in the optimizer), and whether the policy moved."""
    policy = gpt_model(cfg, state).train()
    reference = create_reference_model(policy)
    optimizer = compiler_free(torch.optim.AdamW)(policy.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        policy(x).logsumexp(-1).mean().backward()
        optimizer.step()
    return {
        "reference_state": parameter_state(reference),
        "reference_grads": [param.grad is not None for param in reference.parameters()],
        "policy_moved": any(not torch.equal(param.detach(), state[name]) for name, param in policy.named_parameters()),
    }


def expect_reference_unchanged(got: dict, state: dict, what: str) -> None:
    expect(got["policy_moved"], f"{what}: the policy did not train (its parameters do not require grad?)")
    reference_state = got["reference_state"]
    expect(isinstance(reference_state, dict) and set(reference_state) == set(state), f"{what}: parameters differ")
    for name, tensor in state.items():
        if not torch.equal(reference_state[name], tensor):
            fail(f"{what}: the reference's {name} changed while the policy trained: the reference must be a deep copy")
    expect(not any(got["reference_grads"]), f"{what}: gradients reached the reference's parameters")


def _after_training(sub, recorded):
    case = recorded["reference"]
    return reference_after_training(sub.create_reference_model, case["cfg"], case["state"], case["x"], steps=3)


@reference_model
@split(produce=_after_training)
def test_reference_weights_unchanged_by_training_the_policy(outputs, recorded):
    """three AdamW steps on the policy leave the reference's weights exactly as they were"""
    expect_reference_unchanged(outputs, recorded["reference"]["state"], "after three training steps of the policy")


def dpo_batch_run(compute_dpo_loss_batch, case: dict) -> dict:
    """Produce: compute_dpo_loss_batch with a policy and a reference in train mode (no dropout), the reference's
    parameters requiring grad; the loss, rewards, the policy's gradients, which reference parameters got one,
    and the modes after."""
    policy = gpt_model(case["cfg"], case["policy_state"]).train()
    # Without dropout the mode changes no value; it is left in train mode to see that the modes stay as they are.
    reference = gpt_model(case["cfg"], case["reference_state"]).train()
    result = compute_dpo_loss_batch(batch_tensors(case["batch"]), policy, reference, case["beta"])
    expect(
        isinstance(result, (tuple, list)) and len(result) == 3,
        "compute_dpo_loss_batch should return (loss, chosen_rewards, rejected_rewards)",
    )
    loss, chosen, rejected = result
    expect_tensor(loss, "the loss of compute_dpo_loss_batch")
    expect(loss.requires_grad, "the loss of compute_dpo_loss_batch has no gradient: run the policy with gradients")
    loss.backward()
    return {
        "loss": loss,
        "chosen": chosen,
        "rejected": rejected,
        "policy_grads": {name: param.grad for name, param in policy.named_parameters()},
        "reference_grads": [name for name, param in reference.named_parameters() if param.grad is not None],
        "policy_training": policy.training,
        "reference_training": reference.training,
    }


def expect_dpo_batch(got: dict, expected: dict, what: str, atol: float = 1e-5) -> None:
    """Compare: `got` (`dpo_batch_run`) against the reference's loss, rewards and policy gradients."""
    if got["reference_grads"]:
        fail(
            f"{what}: gradients reached the reference model ({got['reference_grads'][0]}, ...): run it inside "
            "torch.no_grad()"
        )
    expect(got["policy_training"], f"{what} put the policy in eval mode: leave the models' modes as they are")
    expect(got["reference_training"], f"{what} changed the reference model's mode: leave the modes as they are")
    loss = got["loss"]
    expect(loss.numel() == 1, f"{what}: the loss should be one number")
    if abs(loss.item() - LN2) < 1e-7 and abs(expected["loss"].item() - LN2) > 1e-4:
        fail(f"{what}: the loss is ln 2 although the policy differs from the reference: is the reference used?")
    expect_close(loss.reshape(()), expected["loss"], f"{what}: the loss", atol=atol)
    for name in SEQUENCES:
        expect_close(got[name], expected[name], f"{what}: the {name} rewards", atol=atol)
    grads = got["policy_grads"]
    for name, grad in expected["policy_grads"].items():
        expect(grads.get(name) is not None, f"{what}: no gradient reached the policy's {name}")
        expect_close(grads[name], grad, f"{what}: the gradient of the policy's {name}", atol=1e-5)


def _dpo_batch(sub, recorded):
    return dpo_batch_run(sub.compute_dpo_loss_batch, recorded["dpo_batch"])


@reference_model
@split(produce=_dpo_batch)
def test_dpo_loss_batch_matches_and_no_gradient_reaches_the_reference(outputs, recorded):
    """loss, rewards and policy gradients of a tiny GPT pair; each sequence with its own mask; the reference
    (whose parameters require grad) gets no gradient; modes unchanged"""
    expect_dpo_batch(outputs, recorded["dpo_batch"]["expected"], "compute_dpo_loss_batch on a tiny GPT")


# ---------------------------------------------------------------- ch12.train_dpo

LOADER_KEYS = ("loss", "chosen_reward", "rejected_reward", "reward_margin", "reward_accuracy")
TRACKING_KEYS = (
    *(f"{part}_{name}" for part in ("train", "val") for name in ("losses", "chosen_rewards", "rejected_rewards")),
    "train_reward_margins",
    "val_reward_margins",
    "train_reward_accuracies",
    "val_reward_accuracies",
    "steps",
    "tokens_seen",
)


def expect_float_dict(got, expected: dict, what: str, rel: float = 1e-5) -> None:
    """Compare: `got` has exactly the keys of `expected`, each a number close to its value."""
    expect_type(got, dict, what)
    missing = [key for key in expected if key not in got]
    if missing:
        fail(f'{what} has no key "{missing[0]}" (its keys: {", ".join(map(str, got)) or "none"})')
    for key, value in expected.items():
        number = expect_number(got[key], f'{what}["{key}"]')
        if not math.isclose(number, value, rel_tol=rel, abs_tol=1e-6):
            if key.endswith("reward_accuracy") and value < 1:
                fail(
                    f'{what}["{key}"] is {number:.4f}, expected {value:.4f}: count a pair only when its chosen '
                    "reward is strictly greater than its rejected reward, and divide by the number of pairs"
                )
            fail(f'{what}["{key}"] is {number:.6g}, expected {value:.6g}')


def loader_run(compute_dpo_loss_loader, case: dict, num_batches) -> dict:
    """Produce: compute_dpo_loss_loader on the case's list of batches with `num_batches`."""
    policy = gpt_model(case["cfg"], case["policy_state"]).eval()
    reference = gpt_model(case["cfg"], case["reference_state"]).eval()
    batches = [batch_tensors(batch) for batch in case["batches"]]
    passed_on = {} if num_batches is None else {"num_batches": num_batches}
    with torch.no_grad():
        return compute_dpo_loss_loader(batches, policy, reference, case["beta"], **passed_on)


def _loader_results(sub, recorded):
    case = recorded["loader"]
    return [loader_run(sub.compute_dpo_loss_loader, case, n) for n in case["num_batches"]]


@train_dpo
@split(produce=_loader_results)
def test_dpo_loss_loader_averages_loss_rewards_margin_and_accuracy(outputs, recorded):
    """the first num_batches batches (all for None or more than there are); accuracy counts ties as wrong"""
    case = recorded["loader"]
    expect_list(outputs, len(case["num_batches"]), "the compute_dpo_loss_loader results")
    for got, n, expected in zip(outputs, case["num_batches"], case["expected"], strict=True):
        expect_float_dict(got, expected, f"compute_dpo_loss_loader(3 batches, num_batches={n})")


def evaluate_run(evaluate_dpo_loss_loader, case: dict) -> dict:
    """Produce: evaluate_dpo_loss_loader with a policy with dropout in train mode; its result, the modes and grad
    states of the policy's forward calls, and its mode afterwards."""
    policy = TinyLanguageModel(**case["tiny"]).train()
    reference = TinyLanguageModel(**{**case["tiny"], "seed": case["tiny"]["seed"] + 1}).eval()
    reference.requires_grad_(False)
    train, val = ([batch_tensors(b) for b in case[part]] for part in ("train", "val"))
    torch.manual_seed(0)  # a policy left in train mode then drops the same units in every run
    result = evaluate_dpo_loss_loader(policy, reference, train, val, case["beta"], case["eval_iter"])
    return {"result": result, "calls": [list(call) for call in policy.calls], "training_after": policy.training}


def expect_evaluation(got: dict, expected: dict, what: str) -> None:
    calls = got["calls"]
    expect(len(calls) > 0, f"{what} never called the policy")
    expect(all(not training for training, _ in calls), f"{what} ran the policy in train mode: call policy_model.eval()")
    expect(all(not grad for _, grad in calls), f"{what} ran the policy with gradients: use torch.no_grad()")
    expect(got["training_after"], f"{what} left the policy in eval mode: put it back in train mode")
    expect_float_dict(got["result"], expected, what)


def _evaluation(sub, recorded):
    return evaluate_run(sub.evaluate_dpo_loss_loader, recorded["evaluate"])


@train_dpo
@split(produce=_evaluation)
def test_evaluate_dpo_loss_loader_in_eval_mode_without_gradients(outputs, recorded):
    """eval mode and no_grad while evaluating eval_iter batches of each loader, train mode after; keys prefixed"""
    expect_evaluation(outputs, recorded["evaluate"]["expected"], "evaluate_dpo_loss_loader")


def training_run(train_model_dpo_simple, case: dict) -> dict:
    """Produce: train_model_dpo_simple on a tiny GPT (handed over in eval mode) against its frozen copy with AdamW;
    the tracking, the reference's parameters and mode afterwards, and the mode and grad state of the policy's
    calls."""
    policy = gpt_model(case["cfg"], case["state"]).eval()  # train_model_dpo_simple puts it in train mode
    calls = []
    policy.register_forward_pre_hook(lambda module, args: calls.append([module.training, torch.is_grad_enabled()]))
    reference = gpt_model(case["cfg"], case["state"]).eval()
    reference.requires_grad_(False)
    optimizer = compiler_free(torch.optim.AdamW)(policy.parameters(), lr=case["lr"], weight_decay=0.0)
    train, val = ([batch_tensors(b) for b in case[part]] for part in ("train", "val"))
    tracking = train_model_dpo_simple(
        policy, reference, train, val, optimizer, case["num_epochs"], case["beta"], case["eval_freq"], case["eval_iter"]
    )
    expect_type(tracking, dict, "the result of train_model_dpo_simple")
    return {
        "tracking": tracking,
        "reference_state": parameter_state(reference),
        "reference_training": reference.training,
        "calls": calls,
    }


def expect_training(got: dict, case: dict, expected: dict, what: str) -> None:
    """Compare: the tracking of `training_run` matches the reference run step by step; the validation margin grows
    and the loss falls below ln 2; the reference never trains."""
    tracking = got["tracking"]
    expect_type(tracking, dict, what)
    missing = [key for key in TRACKING_KEYS if key not in tracking]
    if missing:
        fail(f'{what} returned no "{missing[0]}" list')
    steps = tracking["steps"]
    expect(isinstance(steps, list), f'{what}: "steps" should be a list')
    if steps != expected["steps"]:
        fail(
            f"{what} evaluated after steps {steps}, expected {expected['steps']}: count optimizer steps from 0 over all "
            "epochs and evaluate when the step is a multiple of eval_freq"
        )
    expect(
        tracking["tokens_seen"] == expected["tokens_seen"],
        f'{what}: "tokens_seen" is {tracking["tokens_seen"]}, expected {expected["tokens_seen"]} '
        '(add batch["chosen"].numel() after every step)',
    )
    for name, tensor in case["state"].items():
        expect(torch.equal(got["reference_state"][name], tensor), f"{what} changed the reference model's {name}")
    expect(not got["reference_training"], f"{what} put the reference model in train mode: it never trains")
    training_calls = [training for training, grad in got["calls"] if grad]
    expect(len(training_calls) > 0, f"{what} never ran the policy with gradients")
    expect(
        all(training_calls),
        f"{what} ran training steps with the policy in eval mode: put it in train mode at the start of every epoch",
    )
    for key in TRACKING_KEYS[:-2]:
        values = tracking[key]
        expect_list(values, len(expected[key]), f'{what}: "{key}"')
        numbers = [expect_number(value, f'{what}: "{key}"') for value in values]
        for step, number, value in zip(steps, numbers, expected[key], strict=True):
            if not math.isclose(number, value, rel_tol=1e-4, abs_tol=1e-5):
                fail(f'{what}: "{key}" after step {step} is {number:.6g}, the reference run has {value:.6g}')
    margins, losses = tracking["val_reward_margins"], tracking["val_losses"]
    expect(margins[-1] > margins[0], f"{what}: the validation margin did not grow")
    expect(losses[-1] < LN2, f"{what}: the validation loss did not fall below ln 2")


def _training(sub, recorded):
    return training_run(sub.train_model_dpo_simple, recorded["training"])


@train_dpo
@split(produce=_training)
def test_train_model_dpo_simple_matches_the_reference_run(outputs, recorded):
    """a short DPO run of a tiny GPT: the tracking equals the reference run's step by step, the validation margin
    grows, the loss drops below ln 2, the reference is untouched"""
    case = recorded["training"]
    expect_training(outputs, case, case["expected"], "train_model_dpo_simple on a tiny GPT")
