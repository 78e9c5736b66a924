"""Hidden checks of chapter 14: the live reference against the submission on inputs and sizes drawn
from the seed. Every case class (top-1 and top-k > 1, 2-D and 3-D logits, bfloat16, a tied head,
several capacity factors) is drawn on every seed; the seed changes values and sizes only."""

from __future__ import annotations

import random

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch14 import (
    balancing_losses,
    capacity,
    capacity_of,
    expect_capacity,
    expect_counts,
    expect_losses,
    expect_moe,
    expect_route,
    losses_of,
    moe_layer,
    moe_outputs,
    parameter_counts,
    parameter_counts_of,
    route_of,
    router,
)
from autograder.compare import expect_list
from autograder.split import split


def _route_case(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for shape, top_k, dtype in (
        ((rng.randint(2, 12), rng.randint(3, 9)), 1, torch.float32),
        ((rng.randint(1, 3), rng.randint(2, 6), rng.randint(4, 9)), 2, torch.float32),
        ((rng.randint(3, 10), rng.randint(5, 9)), rng.randint(3, 4), torch.bfloat16),
    ):
        cases.append({"logits": (torch.randn(shape, generator=gen) * 3).to(dtype), "top_k": top_k})
    return {"cases": cases}


def _routes(sub, case):
    return [route_of(sub.route, c["logits"], c["top_k"]) for c in case["cases"]]


@router
@split(setup=_route_case, produce=_routes)
def test_route_agrees_with_reference(outputs, case, ref):
    """hidden: route on random logits (top-1, top-2 of a batch, bfloat16 top-3 or top-4)"""
    expect_list(outputs, len(case["cases"]), "the route results")
    for c, out in zip(case["cases"], outputs, strict=True):
        weights, indices = ref.route(c["logits"].clone(), c["top_k"])
        expect_route(out, c["logits"], c["top_k"], weights, indices, f"hidden logits, top-{c['top_k']}")


def _moe_case(ref, seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cases = []
    for num_experts, top_k in ((rng.randint(3, 6), 2), (rng.randint(4, 8), 1), (rng.randint(5, 8), 3)):
        config = {
            "emb_dim": rng.randint(4, 12),
            "hidden_dim": rng.randint(4, 16),
            "num_experts": num_experts,
            "num_experts_per_tok": top_k,
        }
        layer = ref.MoEFeedForward(dict(config, dtype=None))
        with torch.no_grad():
            layer.gate.weight.mul_(4)
        x = torch.randn(rng.randint(1, 3), rng.randint(2, 9), config["emb_dim"])
        case = {"config": config, "state": parameter_state(layer), "x": x}
        case["expected"] = moe_outputs(ref, case)
        cases.append(case)
    return {"cases": cases}


def _moes(sub, case):
    return [moe_outputs(sub, c) for c in case["cases"]]


@moe_layer
@split(setup=_moe_case, produce=_moes)
def test_moe_layer_agrees_with_reference(outputs, case):
    """hidden: MoEFeedForward outputs, logits and gradients for random sizes (top-2, top-1, top-3)"""
    expect_list(outputs, len(case["cases"]), "the MoEFeedForward results")
    for c, out in zip(case["cases"], outputs, strict=True):
        what = f"a hidden layer with {c['config']['num_experts']} experts, top-{c['config']['num_experts_per_tok']}"
        expect_moe(out, c, c["expected"], what)


def _loss_case(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    skewed = torch.randn(rng.randint(20, 60), 6, generator=gen)
    skewed[:, rng.randrange(6)] += 2.0
    return {
        "cases": [
            {"logits": torch.randn(rng.randint(2, 4), rng.randint(5, 20), 8, generator=gen) * 2, "top_k": 2},
            {"logits": torch.randn(rng.randint(10, 50), rng.randint(3, 7), generator=gen), "top_k": 1},
            {"logits": skewed, "top_k": 3},
        ]
    }


def _losses(sub, case):
    return [losses_of(sub, c["logits"], c["top_k"]) for c in case["cases"]]


@balancing_losses
@split(setup=_loss_case, produce=_losses)
def test_losses_agree_with_reference(outputs, case, ref):
    """hidden: both losses and their gradients on random logits (top-2 batch, top-1, skewed top-3)"""
    expect_list(outputs, len(case["cases"]), "the loss results")
    for c, out in zip(case["cases"], outputs, strict=True):
        expected = losses_of(ref, c["logits"], c["top_k"])
        expect_losses(out, expected, f"hidden logits, top-{c['top_k']}")


def _capacity_case(ref, seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for top_k, factor in ((1, rng.choice([0.5, 1.0, 1.1])), (2, rng.choice([1.0, 1.25, 1.5])), (3, 0.75)):
        num_experts, num_tokens = rng.randint(top_k + 2, 8), rng.randint(8, 40)
        bias = torch.zeros(num_experts)
        bias[rng.randrange(num_experts)] = 1.5
        indices = torch.topk(torch.randn(num_tokens, num_experts, generator=gen) + bias, top_k, dim=-1).indices
        cap = ref.expert_capacity(num_tokens, num_experts, top_k, factor)
        case = {
            "indices": indices,
            "num_experts": num_experts,
            "capacity": cap,
            "capacity_args": [num_tokens, num_experts, top_k, factor],
        }
        case["expected"] = {"capacity": cap, "mask": ref.capacity_mask(indices, num_experts, cap)}
        cases.append(case)
    return {"cases": cases}


def _capacities(sub, case):
    return [capacity_of(sub, c) for c in case["cases"]]


@capacity
@split(setup=_capacity_case, produce=_capacities)
def test_capacity_agrees_with_reference(outputs, case):
    """hidden: capacities and kept choices for random routings (top-1, top-2, top-3)"""
    expect_list(outputs, len(case["cases"]), "the capacity results")
    for c, out in zip(case["cases"], outputs, strict=True):
        expect_capacity(out, c, c["expected"], f"hidden routing, top-{c['capacity_args'][2]}")


def _counts_case(seed):
    rng = random.Random(seed)
    configs = []
    for tied, explicit_head_dim in ((False, False), (True, True)):
        heads = rng.choice([2, 4, 8])
        config = {
            "vocab_size": rng.randint(50, 5000),
            "hidden_size": heads * rng.randint(2, 16),
            "intermediate_size": rng.randint(8, 300),
            "num_hidden_layers": rng.randint(1, 6),
            "num_attention_heads": heads,
            "num_key_value_heads": rng.choice([d for d in (1, 2, heads) if heads % d == 0]),
            "num_local_experts": rng.randint(2, 16),
        }
        config["num_experts_per_tok"] = rng.randint(1, min(4, config["num_local_experts"] - 1))
        if tied:
            config["tie_word_embeddings"] = True
        if explicit_head_dim:
            config["head_dim"] = rng.randint(2, 12)
        configs.append(config)
    return {"configs": configs}


def _counts(sub, case):
    return parameter_counts_of(sub, case["configs"])


@parameter_counts
@split(setup=_counts_case, produce=_counts)
def test_parameter_counts_agree_with_reference(outputs, case, ref):
    """hidden: counts for random configs (untied with default head_dim; tied with explicit head_dim)"""
    configs = case["configs"]
    expected = [list(ref.moe_parameter_counts(dict(c))) for c in configs]
    expect_counts(outputs, configs, expected, ["a hidden config (untied)", "a hidden config (tied, head_dim given)"])
