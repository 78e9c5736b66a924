"""Chapter 12 fixtures: the reference's token ids of hand-made entries, random log-probability and DPO cases,
and tiny GPT runs of a batch's loss, the loader, the evaluation and a short DPO training."""

from __future__ import annotations

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch12 import (
    ENTRIES,
    TINY_GPT,
    dpo_batch_run,
    evaluate_run,
    gpt_model,
    loader_run,
    pair,
    toy_items,
    training_run,
)
from llmcourse.data import gpt2_encoding


def _items(ref) -> list[dict]:
    dataset = ref.PreferenceDataset([dict(entry) for entry in ENTRIES], gpt2_encoding())
    return [{key: list(dataset[i][key]) for key in ("prompt", "chosen", "rejected")} for i in range(len(ENTRIES))]


def _logprob_cases(generator: torch.Generator) -> list[dict]:
    def logits_labels(batch, tokens, vocab, scale=1.0):
        return (
            torch.randn(batch, tokens, vocab, generator=generator) * scale,
            torch.randint(0, vocab, (batch, tokens), generator=generator),
        )

    cases = []
    logits, labels = logits_labels(3, 7, 11)
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 1, 0]], dtype=torch.bool)
    cases.append({"what": "compute_logprobs with a bool mask", "logits": logits, "labels": labels, "mask": mask})
    logits, labels = logits_labels(2, 9, 5)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 1, 1]], dtype=torch.float32)
    cases.append({"what": "compute_logprobs with a 0/1 float mask", "logits": logits, "labels": labels, "mask": mask})
    logits, labels = logits_labels(2, 6, 13)
    cases.append({"what": "compute_logprobs without a mask", "logits": logits, "labels": labels})
    logits, labels = logits_labels(3, 5, 7, scale=80.0)
    cases.append({"what": "compute_logprobs of large logits without a mask", "logits": logits, "labels": labels})
    return cases


def _gradient_case(ref, generator: torch.Generator) -> dict:
    logits = torch.randn(2, 6, 7, generator=generator, requires_grad=True)
    labels = torch.randint(0, 7, (2, 6), generator=generator)
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    weights = torch.tensor([0.7, -1.3])
    (ref.compute_logprobs(logits, labels, mask) * weights).sum().backward()
    return {
        "what": "compute_logprobs with a gradient",
        "logits": logits.detach(),
        "labels": labels,
        "mask": mask,
        "weights": weights,
        "grad": logits.grad,
    }


def _dpo_case(kind: str, what: str, beta: float, logprobs: list[torch.Tensor]) -> dict:
    keys = ("model_chosen", "model_rejected", "reference_chosen", "reference_rejected")
    return {"kind": kind, "what": what, "beta": beta, **dict(zip(keys, logprobs, strict=True))}


def _dpo_cases(generator: torch.Generator) -> list[dict]:
    def logprobs(batch):
        return [-(5 + 55 * torch.rand(batch, generator=generator)) for _ in range(4)]

    cases = [
        _dpo_case("random", f"random log-probabilities, beta={beta}", beta, logprobs(6)) for beta in (0.1, 0.5, 2.0)
    ]
    for beta in (0.1, 3.0):
        chosen, rejected = logprobs(5)[:2]
        cases.append(
            _dpo_case(
                "equal",
                f"a policy equal to its reference, beta={beta}",
                beta,
                [chosen, rejected, chosen.clone(), rejected.clone()],
            )
        )
    big, small = torch.tensor([-5000.0, -20.0, -12000.0]), torch.tensor([-10.0, -4000.0, -15.0])
    zero = torch.zeros(3)
    cases.append(
        _dpo_case("extreme", "log-ratio differences of thousands of nats, beta=1.0", 1.0, [big, small, zero, zero])
    )
    cases.append(
        _dpo_case("extreme", "log-ratio differences of thousands of nats, beta=0.1", 0.1, [small, big, big, small])
    )
    for beta in (0.1, 0.7):
        cases.append(_dpo_case("gradient", f"random log-probabilities with gradients, beta={beta}", beta, logprobs(4)))
    return cases


def _four(batch: dict) -> dict:
    return {key: batch[key] for key in ("chosen", "rejected", "chosen_mask", "rejected_mask")}


def _dpo_batch_case(ref) -> dict:
    items = [pair([1, 2, 3], [4, 5, 6, 7], [8]), pair([9, 10], [11], [12, 13, 14]), pair([15, 16, 1, 2], [3], [4, 5])]
    case = {
        "cfg": TINY_GPT,
        "policy_state": parameter_state(gpt_model(TINY_GPT, seed=31)),
        "reference_state": parameter_state(gpt_model(TINY_GPT, seed=32)),
        "batch": _four(ref.custom_collate_fn(items, pad_token_id=0)),
        "beta": 0.5,
    }
    expected = dpo_batch_run(ref.compute_dpo_loss_batch, case)
    return {**case, "expected": {key: expected[key] for key in ("loss", "chosen", "rejected", "policy_grads")}}


def _loader_case(ref, generator: torch.Generator) -> dict:
    items = toy_items(6, TINY_GPT["vocab_size"], generator)
    items[4] = pair([3, 4, 5], [6, 6], [6, 6])  # a tie: equal rewards count as wrong
    case = {
        "cfg": TINY_GPT,
        "policy_state": parameter_state(gpt_model(TINY_GPT, seed=41)),
        "reference_state": parameter_state(gpt_model(TINY_GPT, seed=42)),
        "batches": [_four(ref.custom_collate_fn(items[i : i + 2], pad_token_id=0)) for i in (0, 2, 4)],
        "beta": 0.2,
        "num_batches": [None, 2, 10],
    }
    return {**case, "expected": [loader_run(ref.compute_dpo_loss_loader, case, n) for n in case["num_batches"]]}


def _evaluate_case(ref, generator: torch.Generator) -> dict:
    items = toy_items(10, 13, generator)
    collate = ref.custom_collate_fn
    case = {
        "tiny": {"vocab_size": 13, "context_length": 10, "emb_dim": 6, "drop_rate": 0.5, "seed": 51},
        "train": [_four(collate(items[i : i + 2], pad_token_id=0)) for i in (0, 2, 4)],
        "val": [_four(collate(items[i : i + 2], pad_token_id=0)) for i in (6, 8)],
        "beta": 0.3,
        "eval_iter": 2,
    }
    return {**case, "expected": evaluate_run(ref.evaluate_dpo_loss_loader, case)["result"]}


def _training_case(ref, generator: torch.Generator) -> dict:
    items = toy_items(16, TINY_GPT["vocab_size"], generator)
    collate = ref.custom_collate_fn
    case = {
        "cfg": TINY_GPT,
        "state": parameter_state(gpt_model(TINY_GPT, seed=61)),
        "train": [_four(collate(items[i : i + 4], pad_token_id=0)) for i in (0, 4, 8)],
        "val": [_four(collate(items[12:16], pad_token_id=0))],
        "lr": 0.01,
        "num_epochs": 2,
        "beta": 0.5,
        "eval_freq": 2,
        "eval_iter": 1,
    }
    return {**case, "expected": training_run(ref.train_model_dpo_simple, case)["tracking"]}


def record(ref) -> dict:
    generator = torch.Generator().manual_seed(12)
    return {
        "prompts": [ref.format_input(entry) for entry in ENTRIES],
        "items": _items(ref),
        "logprobs": _logprob_cases(generator),
        "logprob_gradient": _gradient_case(ref, generator),
        "dpo": _dpo_cases(generator),
        "reference": {
            "cfg": {**TINY_GPT, "drop_rate": 0.5},
            "state": parameter_state(gpt_model({**TINY_GPT, "drop_rate": 0.5}, seed=21)),
            "x": torch.randint(0, TINY_GPT["vocab_size"], (2, 7), generator=generator),
        },
        "dpo_batch": _dpo_batch_case(ref),
        "loader": _loader_case(ref, generator),
        "evaluate": _evaluate_case(ref, generator),
        "training": _training_case(ref, generator),
    }
