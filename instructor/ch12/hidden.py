"""Hidden checks of chapter 12: the live reference against the submission on entries, batches,
log-probabilities, betas, tiny GPT models and training runs drawn from the seed. Every seed covers
every case class (a pad id inside a response, allowed_max_length inside a prompt and inside the
responses, an empty response, masks with and without the prompt; bool, 0/1 and no masks; a policy
equal to its reference and extreme log-probabilities); the seed changes only values and sizes.
Messages say what differs, never the inputs."""

from __future__ import annotations

import math
import random

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch12 import (
    LN2,
    LOGPROB_KEYS,
    TRACKING_KEYS,
    collated,
    dpo_batch_run,
    dpo_loss,
    dpo_loss_of,
    evaluate_run,
    expect_collated,
    expect_dpo_batch,
    expect_dpo_loss,
    expect_evaluation,
    expect_float_dict,
    expect_frozen_copy,
    expect_logprobs,
    expect_reference_unchanged,
    expect_training,
    full_texts,
    gpt_model,
    loader_run,
    logprobs,
    logprobs_of,
    pair,
    preference_data,
    reference_after_training,
    reference_model,
    reference_observed,
    toy_items,
    train_dpo,
    training_run,
)
from autograder.compare import expect, expect_close, expect_list, expect_type, fail
from autograder.split import split

_WORDS = ["cat", "sun", "river", "blue", "quick", "seven", "apple", "calm", "north", "paper", "kindly", "please"]


def _sentence(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."


def _gpt_config(rng: random.Random, drop_rate: float = 0.0) -> dict:
    n_heads = rng.randint(1, 2)
    return {
        "vocab_size": rng.randint(12, 30),
        "context_length": 16,
        "emb_dim": 4 * n_heads * rng.randint(1, 2),
        "n_heads": n_heads,
        "n_layers": rng.randint(1, 2),
        "drop_rate": drop_rate,
        "qkv_bias": rng.random() < 0.5,
    }


def _four(batch: dict) -> dict:
    return {key: batch[key] for key in ("chosen", "rejected", "chosen_mask", "rejected_mask")}


# ---------------------------------------------------------------- PreferenceDataset


def _entries_case(ref, seed):
    rng = random.Random(seed)
    entries = []
    for index in range(rng.randint(3, 5)):
        entries.append(
            {
                "instruction": _sentence(rng, 2, 6),
                "input": "" if index % 2 else _sentence(rng, 1, 4),
                "output": _sentence(rng, 2, 5),
                "chosen": _sentence(rng, 2, 8),
                "rejected": _sentence(rng, 2, 8),
            }
        )
    return {"entries": entries}


def _dataset_outputs(sub, case, gpt2):
    dataset = sub.PreferenceDataset([dict(entry) for entry in case["entries"]], gpt2)
    length = len(dataset)
    expect(
        length == len(case["entries"]), f"len(PreferenceDataset of {len(case['entries'])} hidden entries) is {length}"
    )
    items = []
    for index in range(length):
        item = dataset[index]
        expect_type(item, dict, f"PreferenceDataset(hidden entries)[{index}]")
        items.append({key: item.get(key) for key in ("prompt", "chosen", "rejected")})
    return {"items": items}


@preference_data
@split(setup=_entries_case, produce=_dataset_outputs)
def test_preference_dataset_agrees_with_reference(outputs, case, ref, gpt2):
    """hidden: random entries with and without an input; the prompt text and both full texts, tokenized"""
    entries = case["entries"]
    expected = ref.PreferenceDataset([dict(entry) for entry in entries], gpt2)
    expect_list(outputs["items"], len(entries), "the PreferenceDataset items")
    for index, (got, entry) in enumerate(zip(outputs["items"], entries, strict=True)):
        want = {key: list(expected[index][key]) for key in ("prompt", "chosen", "rejected")}
        for key in want:
            expect(got[key] is not None, f'PreferenceDataset(hidden entries)[{index}] has no key "{key}"')
        if got != want:
            texts = full_texts(entry, ref.format_input(entry))
            for key in want:
                if got[key] != want[key]:
                    decoded = gpt2.decode(got[key]) if isinstance(got[key], list) else None
                    if decoded is not None and decoded != texts[key]:
                        fail(
                            f'PreferenceDataset(hidden entries)[{index}]["{key}"] decodes to another text than '
                            f"expected: the {key} text is "
                            + ("the prompt text" if key == "prompt" else f'the prompt text + entry["{key}"]')
                        )
                    fail(f'PreferenceDataset(hidden entries)[{index}]["{key}"] holds other token ids')


# ---------------------------------------------------------------- custom_collate_fn


def _random_items(rng: random.Random, count: int, pad: int | None = None, empty: bool = False) -> list[dict]:
    items = []
    for index in range(count):
        prompt = [rng.randint(3, 40) for _ in range(rng.randint(1, 6))]
        chosen = [rng.randint(3, 40) for _ in range(rng.randint(1, 6))]
        rejected = [rng.randint(3, 40) for _ in range(rng.randint(1, 6))]
        if pad is not None and index == 0:
            chosen[rng.randrange(len(chosen))] = pad
            rejected[rng.randrange(len(rejected))] = pad
        if empty and index == count - 1:
            chosen = []
        items.append(pair(prompt, chosen, rejected))
    return items


def _collate_case(ref, seed):
    rng = random.Random(seed)
    cases = [("a hidden batch", _random_items(rng, rng.randint(2, 5)), {})]
    items = _random_items(rng, rng.randint(2, 4))
    shortest_prompt = min(len(item["prompt"]) for item in items)
    cases.append(("a hidden batch cut inside a prompt", items, {"allowed_max_length": rng.randint(1, shortest_prompt)}))
    items = _random_items(rng, rng.randint(2, 4))
    longest = max(len(item[key]) for item in items for key in ("chosen", "rejected"))
    longest_prompt = max(len(item["prompt"]) for item in items)
    cases.append(
        (
            "a hidden batch cut inside the responses",
            items,
            {
                "allowed_max_length": rng.randint(longest_prompt + 1, longest)
                if longest > longest_prompt + 1
                else longest - 1
            },
        )
    )
    cases.append(("a hidden batch, allowed_max_length beyond it", _random_items(rng, 3), {"allowed_max_length": 40}))
    pad = rng.randint(0, 2)
    cases.append(
        (
            "a hidden batch whose pad id occurs in responses",
            _random_items(rng, 3, pad=pad, empty=True),
            {"pad_token_id": pad},
        )
    )
    cases.append(
        (
            "a hidden batch without prompt masking",
            _random_items(rng, rng.randint(2, 4)),
            {"mask_prompt_tokens": False, "pad_token_id": rng.randint(0, 2)},
        )
    )
    return {"cases": [list(case) for case in cases]}


def _collate_outputs(sub, case):
    return [
        collated(sub.custom_collate_fn, items, kwargs, f"custom_collate_fn on {description}")
        for description, items, kwargs in case["cases"]
    ]


@preference_data
@split(setup=_collate_case, produce=_collate_outputs)
def test_collate_agrees_with_reference(outputs, case, ref):
    """hidden: random batches; cut inside a prompt, inside the responses and beyond; a pad id inside responses and
    an empty response; masks with and without the prompt"""
    expect_list(outputs, len(case["cases"]), "the custom_collate_fn results")
    for got, (description, items, kwargs) in zip(outputs, case["cases"], strict=True):
        what = f"custom_collate_fn on {description}"
        expect_collated(got, items, kwargs, what)
        expected = ref.custom_collate_fn([{k: list(v) for k, v in item.items()} for item in items], **kwargs)
        for key in ("chosen", "rejected", "chosen_mask", "rejected_mask"):
            expect(torch.equal(got[key], expected[key]), f'{what}: "{key}" differs')


# ---------------------------------------------------------------- compute_logprobs


def _logprob_case(ref, seed):
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    cases = []
    for kind in ("bool", "float", "none", "large"):
        batch, tokens, vocab = rng.randint(1, 4), rng.randint(2, 9), rng.randint(2, 30)
        case = {
            "what": f"compute_logprobs on hidden logits ({kind} mask)"
            if kind != "large"
            else "compute_logprobs on hidden large logits",
            "logits": torch.randn(batch, tokens, vocab, generator=generator) * (60.0 if kind == "large" else 2.0),
            "labels": torch.randint(0, vocab, (batch, tokens), generator=generator),
            "weights": torch.randn(batch, generator=generator),
        }
        if kind in ("bool", "float"):
            mask = torch.rand(batch, tokens, generator=generator) < 0.6
            mask[:, 1] = True  # at least one selected position in every row
            case["mask"] = mask if kind == "bool" else mask.float()
        cases.append(case)
    return {"cases": cases}


def _logprob_outputs(sub, case):
    return [logprobs_of(sub.compute_logprobs, c, with_grad=True) for c in case["cases"]]


@logprobs
@split(setup=_logprob_case, produce=_logprob_outputs)
def test_compute_logprobs_agrees_with_reference(outputs, case, ref):
    """hidden: random shapes; bool, 0/1 and no masks, large logits; values and gradients w.r.t. the logits"""
    expect_list(outputs, len(case["cases"]), "the compute_logprobs results")
    for got, c in zip(outputs, case["cases"], strict=True):
        expect_logprobs(got["logprobs"], c["logits"], c["labels"], c.get("mask"), c["what"], atol=1e-3)
        logits = c["logits"].clone().requires_grad_(True)
        (ref.compute_logprobs(logits, c["labels"], c.get("mask")) * c["weights"]).sum().backward()
        expect(got["grad"] is not None, f"{c['what']}: no gradient reached the logits")
        expect_close(got["grad"], logits.grad, f"{c['what']}: the gradient w.r.t. the logits", atol=1e-4)


# ---------------------------------------------------------------- compute_dpo_loss


def _dpo_case(ref, seed):
    generator = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)

    def logprobs(batch):
        return [-(1 + 80 * torch.rand(batch, generator=generator)) for _ in range(4)]

    def case(kind, what, beta, values):
        return {"kind": kind, "what": what, "beta": beta, **dict(zip(LOGPROB_KEYS, values, strict=True))}

    beta = rng.choice([0.05, 0.2, 0.5, 1.5, 3.0])
    cases = [
        case("random", f"hidden log-probabilities, a hidden beta ({i})", b, logprobs(rng.randint(1, 8)))
        for i, b in enumerate((beta, rng.uniform(0.01, 2.0)))
    ]
    chosen, rejected = logprobs(rng.randint(1, 6))[:2]
    cases.append(
        case(
            "equal",
            "a policy equal to its reference, hidden values",
            rng.uniform(0.05, 5.0),
            [chosen, rejected, chosen.clone(), rejected.clone()],
        )
    )
    size = rng.randint(1, 4)
    big = -(3000 + 9000 * torch.rand(size, generator=generator))
    small = -(1 + 10 * torch.rand(size, generator=generator))
    cases.append(
        case(
            "extreme",
            "hidden extreme log-probabilities",
            rng.choice([0.5, 1.0, 2.0]),
            [small, big, big, small] if rng.random() < 0.5 else [big, small, small, big],
        )
    )
    cases.append(
        case(
            "extreme",
            "hidden extreme log-probabilities, the other side",
            rng.choice([0.5, 1.0, 2.0]),
            [big, small, torch.zeros(size), torch.zeros(size)],
        )
    )
    return {"cases": cases}


def _dpo_outputs(sub, case):
    return [dpo_loss_of(sub.compute_dpo_loss, c) for c in case["cases"]]


@dpo_loss
@split(setup=_dpo_case, produce=_dpo_outputs)
def test_dpo_loss_agrees_with_reference(outputs, case, ref):
    """hidden: random batch sizes and betas, a policy equal to its reference, extreme values on both sides; the
    loss, rewards and gradients against the formula and the reference"""
    expect_list(outputs, len(case["cases"]), "the compute_dpo_loss results")
    for got, c in zip(outputs, case["cases"], strict=True):
        expect_dpo_loss(got, c, c["what"], atol=1e-4)
        if c["kind"] == "equal":
            expect(abs(got["loss"].item() - LN2) < 1e-6, f"the DPO loss on {c['what']} is not ln 2")
        expected = dpo_loss_of(ref.compute_dpo_loss, c)
        grads = got["grads"]
        expect(grads is not None, f"the DPO loss on {c['what']} has no gradient")
        expect_list(grads, 4, "the gradients of the four inputs")
        for grad, want, key in zip(grads, expected["grads"], LOGPROB_KEYS, strict=True):
            expect(grad is not None, f"no gradient reached {key}_logprobs on {c['what']}")
            expect_close(grad, want, f"the gradient w.r.t. {key}_logprobs on {c['what']}", atol=1e-6)


# ---------------------------------------------------------------- reference model and the loss of a batch


def _reference_case(ref, seed):
    rng = random.Random(seed)
    cfg = _gpt_config(rng, drop_rate=rng.choice([0.3, 0.5]))
    model = gpt_model(cfg, seed=seed)
    return {
        "cfg": cfg,
        "state": parameter_state(model),
        "x": torch.randint(0, cfg["vocab_size"], (2, rng.randint(3, 10))),
        "steps": rng.randint(2, 4),
    }


def _reference_outputs(sub, case):
    return {
        "copy": reference_observed(sub.create_reference_model, case["cfg"], case["state"], case["x"]),
        "trained": reference_after_training(
            sub.create_reference_model, case["cfg"], case["state"], case["x"], case["steps"]
        ),
    }


@reference_model
@split(setup=_reference_case, produce=_reference_outputs)
def test_reference_model_is_frozen_on_hidden_models(outputs, case):
    """hidden: random GPT sizes with dropout; a deep, frozen copy in eval mode that training the policy never moves"""
    expect_frozen_copy(outputs["copy"], case["state"], "create_reference_model(a hidden policy)")
    expect_reference_unchanged(outputs["trained"], case["state"], "after training a hidden policy")


def _dpo_batch_case(ref, seed):
    rng = random.Random(seed)
    cfg = _gpt_config(rng)
    vocab = cfg["vocab_size"]
    items = [
        pair(*([rng.randrange(vocab) for _ in range(rng.randint(lo, hi))] for lo, hi in ((1, 5), (1, 5), (1, 5))))
        for _ in range(rng.randint(2, 4))
    ]
    case = {
        "cfg": cfg,
        "policy_state": parameter_state(gpt_model(cfg, seed=seed)),
        "reference_state": parameter_state(gpt_model(cfg, seed=seed + 1)),
        "batch": _four(ref.custom_collate_fn(items, pad_token_id=rng.randrange(vocab))),
        "beta": rng.choice([0.1, 0.5, 2.0]),
    }
    return case


def _dpo_batch_outputs(sub, case):
    return dpo_batch_run(sub.compute_dpo_loss_batch, case)


@reference_model
@split(setup=_dpo_batch_case, produce=_dpo_batch_outputs)
def test_dpo_loss_batch_agrees_with_reference(outputs, case, ref):
    """hidden: random GPT sizes, batches, pad ids and betas; loss, rewards and policy gradients; nothing reaches
    the reference"""
    expected = dpo_batch_run(ref.compute_dpo_loss_batch, case)
    expect_dpo_batch(outputs, expected, "compute_dpo_loss_batch on a hidden GPT", atol=1e-4)


# ---------------------------------------------------------------- training


def _loader_case(ref, seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    cfg = _gpt_config(rng)
    batch_size, count = rng.randint(1, 3), rng.randint(3, 5)
    items = toy_items(batch_size * count, cfg["vocab_size"], generator)
    items[0] = pair(items[0]["prompt"], [5, 5], [5, 5])  # a tie
    return {
        "cfg": cfg,
        "policy_state": parameter_state(gpt_model(cfg, seed=seed)),
        "reference_state": parameter_state(gpt_model(cfg, seed=seed + 1)),
        "batches": [
            _four(ref.custom_collate_fn(items[i : i + batch_size], pad_token_id=0))
            for i in range(0, len(items), batch_size)
        ],
        "beta": rng.choice([0.1, 0.5, 1.0]),
        "num_batches": [None, rng.randint(1, count - 1), count + rng.randint(1, 3)],
    }


def _loader_outputs(sub, case):
    return [loader_run(sub.compute_dpo_loss_loader, case, n) for n in case["num_batches"]]


@train_dpo
@split(setup=_loader_case, produce=_loader_outputs)
def test_dpo_loss_loader_agrees_with_reference(outputs, case, ref):
    """hidden: random GPT sizes, batch sizes and counts, num_batches None, fewer and more than there are, a tie"""
    expect_list(outputs, len(case["num_batches"]), "the compute_dpo_loss_loader results")
    for got, n in zip(outputs, case["num_batches"], strict=True):
        expected = loader_run(ref.compute_dpo_loss_loader, case, n)
        expect_float_dict(got, expected, f"compute_dpo_loss_loader(hidden batches, num_batches={n})")


def _evaluate_case(ref, seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    vocab = rng.randint(8, 20)
    items = toy_items(12, vocab, generator)
    collate = ref.custom_collate_fn
    return {
        "tiny": {
            "vocab_size": vocab,
            "context_length": 10,
            "emb_dim": rng.randint(4, 8),
            "drop_rate": 0.5,
            "seed": seed,
        },
        "train": [_four(collate(items[i : i + 2], pad_token_id=0)) for i in (0, 2, 4, 6)],
        "val": [_four(collate(items[i : i + 2], pad_token_id=0)) for i in (8, 10)],
        "beta": rng.choice([0.1, 0.5, 1.0]),
        "eval_iter": rng.randint(1, 2),
    }


def _evaluate_outputs(sub, case):
    return evaluate_run(sub.evaluate_dpo_loss_loader, case)


@train_dpo
@split(setup=_evaluate_case, produce=_evaluate_outputs)
def test_evaluate_dpo_loss_loader_agrees_with_reference(outputs, case, ref):
    """hidden: random models and eval_iter; eval mode, no gradients, train mode after, the reference's values"""
    expect_evaluation(
        outputs, evaluate_run(ref.evaluate_dpo_loss_loader, case)["result"], "evaluate_dpo_loss_loader on hidden data"
    )


def _training_case(ref, seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    cfg = _gpt_config(rng)
    batch_size = rng.randint(3, 4)
    items = toy_items(4 * batch_size, cfg["vocab_size"], generator)
    collate = ref.custom_collate_fn
    return {
        "cfg": cfg,
        "state": parameter_state(gpt_model(cfg, seed=seed)),
        "train": [
            _four(collate(items[i : i + batch_size], pad_token_id=0)) for i in range(0, 3 * batch_size, batch_size)
        ],
        "val": [_four(collate(items[3 * batch_size :], pad_token_id=0))],
        "lr": 0.01,
        "num_epochs": 2,
        "beta": rng.choice([0.5, 1.0]),
        "eval_freq": rng.randint(1, 2),
        "eval_iter": 1,
    }


def _training_outputs(sub, case):
    return training_run(sub.train_model_dpo_simple, case)


@train_dpo
@split(setup=_training_case, produce=_training_outputs)
def test_train_model_dpo_simple_agrees_with_reference(outputs, case, ref):
    """hidden: a random tiny GPT, batch size and eval_freq; the tracking of the reference run step by step"""
    expected = training_run(ref.train_model_dpo_simple, case)["tracking"]
    expect(all(key in expected for key in TRACKING_KEYS), "the reference run is incomplete")
    expect(math.isfinite(expected["val_losses"][-1]), "the reference run diverged")
    expect_training(outputs, case, expected, "train_model_dpo_simple on a hidden tiny GPT")
