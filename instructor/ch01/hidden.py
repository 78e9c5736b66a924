"""Hidden checks of chapter 1: fresh shapes, inputs, loaders and DDP layouts drawn from the seed.

The oracles are PyTorch's own: torch.broadcast_shapes, torch.autograd, a count of correct
predictions, and a single process training on the ranks' batches together. Every case class of
the public checks (incompatible shapes, scalars and size-0 dimensions; inputs with and without
requires_grad; short last batches and dropout; every is_available combination; even and uneven
DDP layouts, more ranks for the sampler, wrong ranks and world sizes) is drawn on every seed.
"""

from __future__ import annotations

import random

import pytest

from autograder.checks.test_ch01 import (
    BEHAVIOURS,
    accuracy_case,
    accuracy_outputs,
    autograd_reference,
    broadcast_results,
    broadcasting,
    compute_accuracy,
    ddp,
    device_outputs,
    expect_accuracies,
    expect_broadcast_results,
    expect_devices,
    expect_list,
    expect_loader_split,
    expect_logistic_gradients,
    expect_logistic_loss,
    expect_no_tracking,
    expect_rank0_speaks,
    expect_rank0_start,
    expect_same_training,
    expect_wrong_rank_rejected,
    expect_wrong_world_fails_in_time,
    get_device,
    loader_orders,
    logistic_case,
    logistic_grads,
    logistic_outputs,
    no_autograd,
    no_broadcast_helpers,
    random_shape_pairs,
    setup_with_wrong_rank,
    setup_with_wrong_world_size,
    start_in_ranks,
    train_in_ranks,
    training_case,
)
from autograder.compare import expect
from autograder.split import split

# ---------------------------------------------------------------- ch01.broadcasting


def _shape_pairs(seed):
    rng = random.Random(seed)
    size = rng.randint(2, 6)
    fixed = [
        ((), tuple(rng.randint(0, 4) for _ in range(rng.randint(0, 3)))),
        ((1,) * rng.randint(1, 3), (0, size)),
        ((size, 1), (1, size + 1)),
        ((rng.randint(1, 3), size), (size + 1,)),
        ((size,), (0,)),
    ]
    return {"pairs": fixed + random_shape_pairs(rng, 300)}


@broadcasting
@no_broadcast_helpers
@split(setup=_shape_pairs, produce=lambda sub, case: broadcast_results(sub, case["pairs"]))
def test_broadcast_shape_agrees_with_torch_on_hidden_pairs(outputs, case):
    """hidden: broadcast_shape against torch.broadcast_shapes on random pairs, incompatible ones included"""
    expect_broadcast_results(outputs, case["pairs"])


# ---------------------------------------------------------------- ch01.logistic_grads


def _logistic_cases(seed):
    rng = random.Random(seed)
    return {
        "cases": [
            logistic_case(rng.randrange(2**31), rng.randint(1, 40), rng.randint(1, 9), requires_grad)
            for requires_grad in (False, True, True)
        ]
    }


def _logistic_outputs(sub, case):
    return logistic_outputs(sub, case["cases"])


@logistic_grads
@no_autograd
@split(setup=_logistic_cases, produce=_logistic_outputs)
def test_logistic_loss_and_gradients_match_autograd(outputs, case):
    """hidden: loss, grad_w and grad_b against torch.autograd on fresh inputs"""
    expected = [autograd_reference(c) for c in case["cases"]]
    expect_logistic_loss(outputs, case["cases"], expected)
    expect_logistic_gradients(outputs, case["cases"], expected)


@logistic_grads
@no_autograd
@split(setup=_logistic_cases, produce=_logistic_outputs)
def test_logistic_outputs_track_no_gradients_on_hidden_inputs(outputs, case):
    """hidden: nothing returned requires grad, w.grad and the inputs stay untouched"""
    expect_no_tracking(outputs, case["cases"])


# ---------------------------------------------------------------- ch01.compute_accuracy


def _accuracy_cases(seed):
    rng = random.Random(seed)
    cases = []
    for dropout in (0.0, 0.7):
        batch_size = rng.randint(2, 7)
        num_examples = batch_size * rng.randint(1, 5) + rng.randint(1, batch_size - 1)  # a short last batch
        cases.append(accuracy_case(rng.randrange(2**31), num_examples, batch_size, dropout))
    batch_size = rng.randint(1, 6)
    cases.append(accuracy_case(rng.randrange(2**31), batch_size * rng.randint(1, 4), batch_size, 0.0))
    return {"cases": cases}


@compute_accuracy
@split(setup=_accuracy_cases, produce=lambda sub, case: accuracy_outputs(sub, case["cases"]))
def test_accuracy_on_hidden_loaders(outputs, case):
    """hidden: the accuracy of models with and without dropout, short last batches, no graph"""
    expect_accuracies(outputs, case["cases"])
    expect_list(outputs, len(case["cases"]), "the compute_accuracy results")
    for result in outputs:
        expect(
            result["grad_enabled"] and not any(result["grad_enabled"]),
            "compute_accuracy ran the model with gradient tracking on (or never); wrap it in torch.no_grad()",
        )


# ---------------------------------------------------------------- ch01.get_device

ALL_COMBINATIONS = [(cuda, mps) for cuda in BEHAVIOURS for mps in BEHAVIOURS]


@get_device
@split(produce=lambda sub: device_outputs(sub, ALL_COMBINATIONS))
def test_get_device_in_every_situation(outputs):
    """hidden: get_device with both is_available functions returning True, False or raising"""
    expect_devices(outputs, ALL_COMBINATIONS)


# ---------------------------------------------------------------- ch01.ddp


def _training_case(seed, layout):
    rng = random.Random(seed)
    batch_size = rng.randint(2, 4)
    per_rank = batch_size * rng.randint(2, 4) + (rng.randint(1, batch_size - 1) if layout == "uneven" else 0)
    seeds = rng.sample(range(1000), 2)
    return training_case(2 * per_rank, batch_size, rng.randint(2, 3), seeds, rng.randrange(1000))


@ddp
@split(setup=_training_case, produce=lambda sub, case: train_in_ranks(sub, case))
@pytest.mark.parametrize("layout", ["even", "uneven"])
def test_ddp_training_matches_one_process_on_hidden_layouts(outputs, case, layout):
    """hidden: two gloo processes train like one process on both ranks' batches; rank 0 alone logs and saves"""
    expect_same_training(outputs, case)
    expect_rank0_speaks(outputs, case)


@ddp
@split(setup=lambda seed: _training_case(seed, "even"), produce=lambda sub, case: start_in_ranks(sub, case))
def test_ddp_ranks_start_from_rank0_weights_on_hidden_seeds(outputs, case):
    """hidden: ranks built with different seeds start from rank 0's weights"""
    expect_rank0_start(outputs, case)


def _layouts(seed):
    rng = random.Random(seed)
    layouts = []
    for world_size in (2, rng.randint(3, 4)):
        batch_size = rng.randint(2, 5)
        layouts.append((world_size * batch_size * rng.randint(2, 4), batch_size, world_size))
    batch_size = rng.randint(2, 5)
    layouts.append((2 * (batch_size * rng.randint(2, 3) + rng.randint(1, batch_size - 1)), batch_size, 2))
    return {"layouts": layouts}


@ddp
@split(setup=_layouts, produce=lambda sub, case: loader_orders(sub, [tuple(x) for x in case["layouts"]]))
def test_ddp_samplers_split_hidden_datasets(outputs, case):
    """hidden: the ranks' loaders share out the examples once each, reshuffled by set_epoch"""
    expect_loader_split(outputs, [tuple(x) for x in case["layouts"]])


def _wrong_ranks(seed):
    rng = random.Random(seed)
    world_size = rng.randint(1, 4)
    return {"calls": [(world_size + rng.randint(0, 3), world_size), (-rng.randint(1, 3), world_size + 1), (0, 0)]}


@ddp
@split(setup=_wrong_ranks, produce=lambda sub, case: setup_with_wrong_rank(sub, [tuple(c) for c in case["calls"]]))
def test_ddp_setup_rejects_hidden_wrong_ranks(outputs, case):
    """hidden: ddp_setup raises ValueError at once for ranks outside 0..world_size-1"""
    expect_wrong_rank_rejected(outputs, [tuple(c) for c in case["calls"]])


def _wrong_world(seed):
    return {"world_size": random.Random(seed).randint(3, 5)}


@ddp
@split(setup=_wrong_world, produce=lambda sub, case: setup_with_wrong_world_size(sub, case["world_size"], 2))
def test_ddp_setup_fails_within_its_timeout_for_hidden_world_sizes(outputs, case):
    """hidden: two processes of a larger world give up within the group's timeout"""
    expect_wrong_world_fails_in_time(outputs, case["world_size"], 2)
