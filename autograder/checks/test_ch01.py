"""Public checks of chapter 1: PyTorch essentials and distributed data parallel.

Broadcasting is compared with `torch.broadcast_shapes`, the hand-written gradients with
torch.autograd, the accuracy with a count over the examples, the device choice with every
combination of patched `is_available` functions. The DDP script's functions run in two gloo
processes that the check forks from the loaded submission (they rendezvous on 127.0.0.1 and send
plain data back through pipes); a single-process run on the two ranks' batches together is what
their weights must match. Every process the check starts runs under a hard wall-clock limit and is
killed past it, so a rendezvous that never completes fails the check instead of hanging it.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import random
import tempfile
import time
from collections.abc import Callable
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from autograder.checks.ranks import RANKS_DEADLINE_S, expect_ranks_finished, run_processes
from autograder.compare import expect, expect_close, expect_list, expect_tensor, fail
from autograder.no_dynamo import compiler_free
from autograder.split import split

broadcasting = pytest.mark.ch01_broadcasting
logistic_grads = pytest.mark.ch01_logistic_grads
compute_accuracy = pytest.mark.ch01_compute_accuracy
get_device = pytest.mark.ch01_get_device
ddp = pytest.mark.ch01_ddp

# The checks' own oracles, bound before any check runs: the exercises may not call them, and
# `forbid` replaces them while a check runs.
_torch_broadcast_shapes = torch.broadcast_shapes
_autograd_grad = torch.autograd.grad

no_broadcast_helpers = pytest.mark.forbid("torch.broadcast_shapes", "torch.broadcast_tensors", "torch.broadcast_to")
no_autograd = pytest.mark.forbid("torch.Tensor.backward", "torch.autograd.grad", "torch.autograd.backward")

# ---------------------------------------------------------------- ch01.broadcasting

# Hand-picked pairs: stretching either side, different lengths, scalars, size-0 dimensions.
SHAPE_PAIRS = [
    ((3, 1), (4,)),
    ((2, 3), (3,)),
    ((5, 1, 4), (3, 1)),
    ((1,), (7, 1)),
    ((), (2, 2)),
    ((4, 5), ()),
    ((), ()),
    ((1,), (0,)),
    ((0, 1), (1, 3)),
    ((2, 1, 1), (1, 1, 1, 6)),
    ((8, 1, 6, 1), (7, 1, 5)),
    ((3,), (3,)),
]
INCOMPATIBLE_PAIRS = [((2, 3), (2,)), ((3,), (4,)), ((0,), (3,)), ((2, 1), (8, 4, 3)), ((5, 4), (1, 5))]


def random_shape_pairs(rng: random.Random, count: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """`count` pairs of shapes of 0 to 4 dimensions with sizes 0 to 4, about half of them broadcastable:
    the second shape starts as the first and some of its sizes become 1, another size, or drop off."""
    pairs = []
    for _ in range(count):
        a = [rng.choice([0, 1, 1, 2, 3, 4]) for _ in range(rng.randint(0, 4))]
        b = list(a)
        for i in range(len(b)):
            roll = rng.random()
            if roll < 0.3:
                b[i] = 1
            elif roll < 0.4:
                b[i] = rng.randint(0, 4)
        b = b[rng.randint(0, len(b)) :] if rng.random() < 0.3 else b
        b = [rng.randint(1, 4) for _ in range(rng.randint(0, 2))] + b
        pairs.append((tuple(a), tuple(b)) if rng.random() < 0.5 else (tuple(b), tuple(a)))
    return pairs


def torch_broadcast(a, b) -> tuple[int, ...] | None:
    """PyTorch's broadcast shape of a and b, or None where they do not broadcast."""
    try:
        return tuple(_torch_broadcast_shapes(a, b))
    except RuntimeError:
        return None


def broadcast_results(sub, pairs) -> list[dict]:
    """What broadcast_shape gives on each pair: the shape, or the exception's type and message.
    The pairs go in as tuples, lists and torch.Size in turn."""
    results = []
    for i, (a, b) in enumerate(pairs):
        convert = (tuple, list, torch.Size)[i % 3]
        try:
            results.append({"shape": sub.broadcast_shape(convert(a), convert(b))})
        except NotImplementedError:
            raise
        except Exception as error:  # noqa: BLE001 - the check reports whatever the student's code raised
            results.append({"raised": type(error).__name__, "message": str(error)[:200]})
    return results


def _describe_shape(shape) -> str:
    return str(tuple(shape)) if isinstance(shape, (list, tuple)) else type(shape).__name__


def expect_broadcast_results(results, pairs, what: str = "broadcast_shape") -> None:
    """Each result is the shape PyTorch broadcasts the pair to, or a ValueError where it cannot."""
    expect_list(results, len(pairs), f"the {what} results")
    for (a, b), result in zip(pairs, results, strict=True):
        call = f"{what}({a}, {b})"
        expected = torch_broadcast(a, b)
        expect(isinstance(result, dict), f"{call}: no result came back")
        if expected is None:
            if "raised" not in result:
                fail(
                    f"{call} returned {_describe_shape(result.get('shape'))}; these shapes cannot be broadcast: raise ValueError"
                )
            expect(
                result["raised"] == "ValueError",
                f"{call} raised {result['raised']}; shapes that cannot be broadcast raise ValueError",
            )
            continue
        if "raised" in result:
            fail(f"{call} raised {result['raised']}: {result['message']}; these shapes broadcast")
        shape = result.get("shape")
        expect(
            isinstance(shape, tuple),
            f"{call} returned a {type(shape).__name__}; return a tuple of ints (list(...) -> tuple(...))",
        )
        expect(
            all(isinstance(size, int) and not isinstance(size, bool) for size in shape),
            f"{call} returned {shape!r}: its sizes should be Python ints",
        )
        if len(shape) != len(expected):
            fail(f"{call} returned {shape}, {len(shape)} dimensions; the result has as many as the longer shape")
        for i in range(1, len(shape) + 1):
            if shape[-i] != expected[-i]:
                fail(
                    f"{call} returned {shape}: wrong size at dimension -{i} (counting from the right); "
                    "a 1 stretches to the other size, equal sizes stay"
                )


def _public_pairs() -> list:
    return SHAPE_PAIRS + random_shape_pairs(random.Random(0), 200)


@broadcasting
@no_broadcast_helpers
@split(produce=lambda sub: broadcast_results(sub, _public_pairs()))
def test_broadcast_shape_agrees_with_torch(outputs):
    """broadcast_shape: the shape torch.broadcast_shapes gives, on hand-picked and random pairs"""
    expect_broadcast_results(outputs, _public_pairs())


@broadcasting
@no_broadcast_helpers
@split(produce=lambda sub: broadcast_results(sub, INCOMPATIBLE_PAIRS))
def test_broadcast_shape_rejects_incompatible_shapes(outputs):
    """broadcast_shape raises ValueError where sizes differ and neither is 1"""
    expect_broadcast_results(outputs, INCOMPATIBLE_PAIRS)


# ---------------------------------------------------------------- ch01.logistic_grads

# Scores x @ w + b stay within about +-8 for these draws, where float32 BCE is exact enough for 1e-5.
LOGISTIC_ATOL = 1e-5


def logistic_case(seed: int, n: int, d: int, requires_grad: bool) -> dict:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)
    return {
        "x": x,
        "y": (torch.rand(n, generator=generator) < 0.5).float(),
        "w": torch.randn(d, generator=generator),
        "b": torch.randn((), generator=generator),
        "requires_grad": requires_grad,
    }


def logistic_outputs(sub, cases: list[dict]) -> list[dict]:
    """logistic_regression_grads on each case, with what it left behind: grad flags, w.grad, inputs."""
    results = []
    for case in cases:
        x, y = case["x"].clone(), case["y"].clone()
        w = case["w"].clone().requires_grad_(case["requires_grad"])
        b = case["b"].clone().requires_grad_(case["requires_grad"])
        returned = sub.logistic_regression_grads(x, y, w, b)
        if not isinstance(returned, (tuple, list)) or len(returned) != 3:
            results.append({"returned": type(returned).__name__})
            continue
        results.append(
            {
                "returned": "triple",
                "values": [value if isinstance(value, torch.Tensor) else None for value in returned],
                "types": [type(value).__name__ for value in returned],
                "requires_grad": [bool(getattr(value, "requires_grad", False)) for value in returned],
                "leaf_grads_set": w.grad is not None or b.grad is not None,
                "inputs_unchanged": all(
                    torch.equal(now.detach(), before)
                    for now, before in ((x, case["x"]), (y, case["y"]), (w, case["w"]), (b, case["b"]))
                ),
            }
        )
    return results


def autograd_reference(case: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The loss and its gradients for w and b, by torch.autograd."""
    w = case["w"].clone().requires_grad_(True)
    b = case["b"].clone().requires_grad_(True)
    loss = F.binary_cross_entropy(torch.sigmoid(case["x"] @ w + b), case["y"])
    grad_w, grad_b = _autograd_grad(loss, (w, b))
    return loss.detach(), grad_w, grad_b


def _expect_triple(result: dict, label: str) -> None:
    expect(
        isinstance(result, dict) and result.get("returned") == "triple",
        f"logistic_regression_grads({label}) should return a tuple (loss, grad_w, grad_b)",
    )
    for name, value, kind in zip(("loss", "grad_w", "grad_b"), result["values"], result["types"], strict=True):
        expect(value is not None, f"logistic_regression_grads({label}): {name} is a {kind}; return tensors")


def _label(case: dict) -> str:
    n, d = case["x"].shape
    return f"x of shape ({n}, {d})" + (", w and b requiring grad" if case["requires_grad"] else "")


def expect_logistic_loss(results, cases, expected: list) -> None:
    """expected: (loss, grad_w, grad_b) of each case."""
    expect_list(results, len(cases), "the logistic_regression_grads results")
    for case, result, (loss, _, _) in zip(cases, results, expected, strict=True):
        label = _label(case)
        _expect_triple(result, label)
        expect_tensor(result["values"][0], f"the loss for {label}", shape=())
        expect_close(result["values"][0], loss, f"the loss for {label} (mean binary cross-entropy)", atol=LOGISTIC_ATOL)


def expect_logistic_gradients(results, cases, expected: list) -> None:
    expect_list(results, len(cases), "the logistic_regression_grads results")
    for case, result, (_, grad_w, grad_b) in zip(cases, results, expected, strict=True):
        label = _label(case)
        _expect_triple(result, label)
        expect_close(result["values"][1], grad_w, f"grad_w for {label}", atol=LOGISTIC_ATOL)
        expect_close(result["values"][2], grad_b, f"grad_b for {label}", atol=LOGISTIC_ATOL)


def expect_no_tracking(results, cases) -> None:
    expect_list(results, len(cases), "the logistic_regression_grads results")
    for case, result in zip(cases, results, strict=True):
        label = _label(case)
        _expect_triple(result, label)
        flags = zip(("loss", "grad_w", "grad_b"), result["requires_grad"], strict=True)
        tracked = [name for name, flag in flags if flag]
        expect(
            not tracked,
            f"logistic_regression_grads({label}): {', '.join(tracked)} requires grad; compute under torch.no_grad() "
            "or detach, so no graph is kept",
        )
        expect(not result["leaf_grads_set"], f"logistic_regression_grads({label}) wrote to w.grad or b.grad")
        expect(result["inputs_unchanged"], f"logistic_regression_grads({label}) changed its inputs in place")


def _recorded_logistic(sub, recorded):
    return logistic_outputs(sub, recorded["logistic_cases"])


@logistic_grads
@no_autograd
@split(produce=_recorded_logistic)
def test_logistic_loss_is_the_mean_bce(outputs, recorded):
    """logistic_regression_grads: the loss is the mean binary cross-entropy, a 0-dim tensor"""
    expect_logistic_loss(outputs, recorded["logistic_cases"], recorded["logistic_expected"])


@logistic_grads
@no_autograd
@split(produce=_recorded_logistic)
def test_logistic_gradients_match_recorded(outputs, recorded):
    """logistic_regression_grads: grad_w and grad_b equal the recorded gradients"""
    expect_logistic_gradients(outputs, recorded["logistic_cases"], recorded["logistic_expected"])


@logistic_grads
@no_autograd
@split(produce=_recorded_logistic)
def test_logistic_outputs_track_no_gradients(outputs, recorded):
    """logistic_regression_grads: nothing returned requires grad; w.grad and the inputs untouched"""
    expect_no_tracking(outputs, recorded["logistic_cases"])


# ---------------------------------------------------------------- ch01.compute_accuracy


class GradModeProbe(nn.Module):
    """A linear classifier with dropout that notes whether each forward call records a graph."""

    def __init__(self, num_features: int, num_classes: int, dropout: float, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.linear = nn.Linear(num_features, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.grad_enabled: list[bool] = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.linear(self.dropout(x))


def accuracy_case(seed: int, num_examples: int, batch_size: int, dropout: float) -> dict:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(num_examples, 4, generator=generator)
    return {
        "features": features,
        "labels": torch.randint(0, 3, (num_examples,), generator=generator),
        "batch_size": batch_size,
        "dropout": dropout,
        "seed": seed,
    }


def accuracy_outputs(sub, cases: list[dict]) -> list[dict]:
    """compute_accuracy on a model left in train() mode, with what it saw of grad mode."""
    results = []
    for case in cases:
        model = GradModeProbe(4, 3, case["dropout"], case["seed"]).train()
        loader = DataLoader(TensorDataset(case["features"], case["labels"]), batch_size=case["batch_size"])
        accuracy = sub.compute_accuracy(model, loader)
        results.append({"accuracy": accuracy, "grad_enabled": model.grad_enabled})
    return results


def expected_accuracy(case: dict) -> float:
    model = GradModeProbe(4, 3, case["dropout"], case["seed"]).eval()
    with torch.no_grad():
        predictions = model(case["features"]).argmax(dim=1)
    return (predictions == case["labels"]).sum().item() / len(case["labels"])


def _accuracy_label(case: dict) -> str:
    n, batch = len(case["labels"]), case["batch_size"]
    return f"compute_accuracy on {n} examples in batches of {batch}"


def expect_accuracies(results, cases) -> None:
    expect_list(results, len(cases), "the compute_accuracy results")
    for case, result in zip(cases, results, strict=True):
        what = _accuracy_label(case)
        accuracy = result["accuracy"]
        expect(
            isinstance(accuracy, float),
            f"{what} returned a {type(accuracy).__name__}; return a Python float (tensor.item())",
        )
        expected = expected_accuracy(case)
        if abs(accuracy - expected) > 1e-6:
            hint = (
                " (the last batch is smaller: count examples, not batches)"
                if len(case["labels"]) % case["batch_size"]
                else ""
            )
            fail(f"{what} returned {accuracy:.4f}, which is not the fraction of correct predictions{hint}")


def _public_accuracy_cases(dropout: float) -> list[dict]:
    return [accuracy_case(5, 10, 4, dropout), accuracy_case(6, 23, 5, dropout), accuracy_case(7, 8, 8, dropout)]


@compute_accuracy
@split(produce=lambda sub: accuracy_outputs(sub, _public_accuracy_cases(0.0)))
def test_accuracy_counts_correct_examples(outputs):
    """compute_accuracy: correct predictions over all examples, a float, short last batch included"""
    expect_accuracies(outputs, _public_accuracy_cases(0.0))


@compute_accuracy
@split(produce=lambda sub: accuracy_outputs(sub, _public_accuracy_cases(0.8)))
def test_accuracy_switches_dropout_off(outputs):
    """compute_accuracy puts the model in eval() mode: dropout must not change the predictions"""
    cases = _public_accuracy_cases(0.8)
    expect_list(outputs, len(cases), "the compute_accuracy results")
    for case, result in zip(cases, outputs, strict=True):
        expect(
            isinstance(result["accuracy"], float) and abs(result["accuracy"] - expected_accuracy(case)) < 1e-6,
            f"{_accuracy_label(case)}, a model with dropout 0.8 left in train() mode: the accuracy is not the "
            "eval() one; call model.eval() first",
        )


@compute_accuracy
@split(produce=lambda sub: accuracy_outputs(sub, _public_accuracy_cases(0.0)))
def test_accuracy_records_no_graph(outputs):
    """compute_accuracy runs the model under torch.no_grad()"""
    expect_list(outputs, 3, "the compute_accuracy results")
    for case, result in zip(_public_accuracy_cases(0.0), outputs, strict=True):
        modes = result["grad_enabled"]
        expect(isinstance(modes, list) and modes, f"{_accuracy_label(case)} never called the model")
        expect(
            not any(modes),
            f"{_accuracy_label(case)}: the model ran with gradient tracking on; wrap it in torch.no_grad()",
        )


# ---------------------------------------------------------------- ch01.get_device

BEHAVIOURS = ("true", "false", "raises")


def _is_available(behaviour: str) -> Callable[[], bool]:
    def is_available() -> bool:
        if behaviour == "raises":
            raise RuntimeError("driver error: could not query the device (simulated by the check)")
        return behaviour == "true"

    return is_available


def expected_device(cuda: str, mps: str) -> str:
    return "cuda" if cuda == "true" else "mps" if mps == "true" else "cpu"


def device_outputs(sub, combinations: list[tuple[str, str]]) -> list[dict]:
    """get_device's answer with torch.cuda.is_available and torch.backends.mps.is_available patched."""
    results = []
    for cuda, mps in combinations:
        with (
            mock.patch.object(torch.cuda, "is_available", _is_available(cuda)),
            mock.patch.object(torch.backends.mps, "is_available", _is_available(mps)),
        ):
            try:
                device = sub.get_device()
            except NotImplementedError:
                raise
            except Exception as error:  # noqa: BLE001 - the check reports whatever the student's code raised
                results.append({"raised": type(error).__name__})
                continue
        if isinstance(device, torch.device):
            results.append({"type": device.type, "index": device.index})
        else:
            results.append({"returned": type(device).__name__, "text": str(device)[:40]})
    return results


def _situation(cuda: str, mps: str) -> str:
    words = {"true": "returns True", "false": "returns False", "raises": "raises"}
    return f"torch.cuda.is_available() {words[cuda]} and torch.backends.mps.is_available() {words[mps]}"


def expect_devices(results, combinations) -> None:
    expect_list(results, len(combinations), "the get_device results")
    for (cuda, mps), result in zip(combinations, results, strict=True):
        situation = _situation(cuda, mps)
        if "raised" in result:
            fail(f"get_device raised {result['raised']} when {situation}; it should never raise")
        expect(
            "type" in result,
            f"get_device returned a {result.get('returned')} ({result.get('text')!r}) when {situation}; "
            "return a torch.device",
        )
        expected = expected_device(cuda, mps)
        expect(
            result["type"] == expected and result["index"] in (None, 0),
            f"get_device gave {result['type']}"
            + (f":{result['index']}" if result["index"] is not None else "")
            + f" when {situation}; the order of preference is cuda, mps, cpu",
        )


PUBLIC_PLAIN = [("true", "true"), ("true", "false"), ("false", "true"), ("false", "false")]
PUBLIC_RAISING = [("raises", "true"), ("raises", "false"), ("false", "raises")]


@get_device
@split(produce=lambda sub: device_outputs(sub, PUBLIC_PLAIN))
def test_get_device_prefers_cuda_then_mps_then_cpu(outputs):
    """get_device: cuda when available, else mps, else cpu, as a torch.device"""
    expect_devices(outputs, PUBLIC_PLAIN)


@get_device
@split(produce=lambda sub: device_outputs(sub, PUBLIC_RAISING))
def test_get_device_survives_a_raising_is_available(outputs):
    """get_device treats an is_available() that raises as unavailable, and never raises"""
    expect_devices(outputs, PUBLIC_RAISING)


# ---------------------------------------------------------------- ch01.ddp: processes

# ---------------------------------------------------------------- ch01.ddp: training


class TinyClassifier(nn.Module):
    """The checks' model: 2 features -> 2 logits through a hidden layer of 6 units."""

    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.layers = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 2))

    def forward(self, x):
        return self.layers(x)


def ddp_data(case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(case["data_seed"])
    features = torch.randn(case["num_examples"], 2, generator=generator)
    labels = ((features[:, 0] + 0.5 * features[:, 1]) > 0).long()
    return features, labels


def _parameters(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def train_in_ranks(sub, case: dict) -> list[dict]:
    """train_ddp in `world_size` gloo processes, each rank's model built with its own seed.

    Each rank reports its weights after training, the losses train_ddp returned, the set_epoch
    calls, its sampler's order in each epoch, what it printed and saved, the backend and whether
    the group was gone after cleanup()."""
    world_size = case["world_size"]

    def work(rank: int, progress: dict) -> dict:
        features, labels = ddp_data(case)
        progress["stage"] = f"ddp_setup({rank}, {world_size})"
        started = [os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"]]
        sub.ddp_setup(rank, world_size)
        backend = torch.distributed.get_backend()
        rendezvous = [os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")]
        progress["stage"] = f"prepare_dataloader(dataset, {case['batch_size']}, {rank}, {world_size})"
        loader = sub.prepare_dataloader(TensorDataset(features, labels), case["batch_size"], rank, world_size)
        sampler = loader.sampler
        set_epoch_calls = []
        if hasattr(sampler, "set_epoch"):
            original = sampler.set_epoch

            def recording_set_epoch(epoch):
                set_epoch_calls.append(int(epoch))
                return original(epoch)

            sampler.set_epoch = recording_set_epoch
        model = TinyClassifier(case["seeds"][rank])
        optimizer = compiler_free(torch.optim.SGD)(model.parameters(), lr=case["lr"])
        save_path = os.path.join(case["folder"], "checkpoint.pth")
        saves = []
        original_save = torch.save

        def recording_save(obj, f, *args, **kwargs):
            saves.append(str(f))
            return original_save(obj, f, *args, **kwargs)

        printed = io.StringIO()
        progress["stage"] = f"train_ddp on rank {rank}"
        with mock.patch.object(torch, "save", recording_save), contextlib.redirect_stdout(printed):
            losses = sub.train_ddp(model, loader, optimizer, case["num_epochs"], rank, save_path=save_path)
        final = _parameters(model)
        orders = []
        for epoch in range(case["num_epochs"]):
            if hasattr(sampler, "set_epoch"):
                original(epoch)
            orders.append([int(i) for i in sampler])
        # Both ranks are past training before rank 0 reads the checkpoint.
        torch.distributed.barrier()
        saved = None
        if rank == 0 and os.path.exists(save_path):
            state = torch.load(save_path, weights_only=True)
            saved = {str(k): v for k, v in state.items()} if isinstance(state, dict) else type(state).__name__
        progress["stage"] = f"cleanup() on rank {rank}"
        sub.cleanup()
        return {
            "backend": str(backend),
            "rendezvous": rendezvous,
            "started": started,
            "final": final,
            "losses": losses if isinstance(losses, list) else type(losses).__name__,
            "set_epoch": set_epoch_calls,
            "orders": orders,
            "batch_size": loader.batch_size,
            "drop_last": bool(loader.drop_last),
            "printed": printed.getvalue()[:2000],
            "saves": saves,
            "saved": saved,
            "group_after_cleanup": torch.distributed.is_initialized(),
        }

    with tempfile.TemporaryDirectory(prefix="ch01-ddp-") as folder:
        case = {**case, "folder": folder}
        return run_processes(work, world_size, RANKS_DEADLINE_S)


def expect_split(orders_by_rank: list, num_examples: int, what: str) -> None:
    """The ranks' index orders of one epoch cover 0..num_examples-1, none twice (DistributedSampler
    pads with repeats only when num_examples is not a multiple of the world size)."""
    world_size = len(orders_by_rank)
    seen = [index for order in orders_by_rank for index in order]
    expect(
        all(isinstance(index, int) and 0 <= index < num_examples for index in seen),
        f"{what}: the samplers give indices outside the dataset",
    )
    missing = set(range(num_examples)) - set(seen)
    expect(not missing, f"{what}: {len(missing)} of {num_examples} examples reach no rank")
    repeats = len(seen) - num_examples
    allowed = -num_examples % world_size
    expect(
        repeats <= allowed and len({len(order) for order in orders_by_rank}) == 1,
        f"{what}: the ranks' shares overlap ({len(seen)} indices for {num_examples} examples over {world_size} ranks); "
        "give DistributedSampler num_replicas=world_size and rank=rank",
    )


def single_process_run(case: dict, orders: list[list[list[int]]]) -> tuple[list[torch.Tensor], list[list[float]]]:
    """One process, rank 0's initial weights, each step on all ranks' batches together (the mean of
    the ranks' mean losses); orders[rank][epoch] is that rank's sampler order. Returns the final
    weights and each rank's mean batch loss per epoch."""
    features, labels = ddp_data(case)
    model = TinyClassifier(case["seeds"][0])
    optimizer = compiler_free(torch.optim.SGD)(model.parameters(), lr=case["lr"])
    world_size, batch_size = case["world_size"], case["batch_size"]
    losses = [[] for _ in range(world_size)]
    for epoch in range(case["num_epochs"]):
        steps = len(orders[0][epoch]) // batch_size
        sums = [0.0] * world_size
        for step in range(steps):
            rank_losses = []
            for rank in range(world_size):
                batch = orders[rank][epoch][step * batch_size : (step + 1) * batch_size]
                rank_losses.append(F.cross_entropy(model(features[batch]), labels[batch]))
            optimizer.zero_grad()
            grads = _autograd_grad(sum(rank_losses) / world_size, list(model.parameters()))
            for parameter, grad in zip(model.parameters(), grads, strict=True):
                parameter.grad = grad
            optimizer.step()
            for rank, loss in enumerate(rank_losses):
                sums[rank] += loss.item()
        for rank in range(world_size):
            losses[rank].append(sums[rank] / max(steps, 1))
    return _parameters(model), losses


def _ranks_data(outputs, case: dict) -> list[dict]:
    data = expect_ranks_finished(outputs, case["world_size"], "training in two processes")
    for rank, report in enumerate(data):
        expect(isinstance(report, dict), f"rank {rank} sent back no report")
    return data


def expect_same_training(outputs, case: dict) -> None:
    """Each rank's weights after train_ddp equal a single-process run on the ranks' batches together."""
    data = _ranks_data(outputs, case)
    expect(
        all(report["backend"] == "gloo" for report in data),
        f"ddp_setup chose the {data[0]['backend']} backend on a machine without CUDA; use gloo there",
    )
    expect(
        all(report["rendezvous"] == report["started"] for report in data),
        f"after ddp_setup MASTER_ADDR:MASTER_PORT is {':'.join(map(str, data[0]['rendezvous']))}, not the address "
        "the processes were started with; only default them when they are unset (torchrun sets them)",
    )
    expect(
        all(report["batch_size"] == case["batch_size"] for report in data),
        f"prepare_dataloader's loader has batch_size {data[0]['batch_size']}; pass batch_size on",
    )
    expect(
        all(report["drop_last"] for report in data),
        "prepare_dataloader's loader keeps a last incomplete batch; set drop_last=True so every rank takes "
        "the same number of steps",
    )
    for epoch in range(case["num_epochs"]):
        expect_split([report["orders"][epoch] for report in data], case["num_examples"], f"epoch {epoch}")
    for rank, report in enumerate(data):
        expect(
            report["set_epoch"] == list(range(case["num_epochs"])),
            f"train_ddp on rank {rank} called sampler.set_epoch with {report['set_epoch']} over "
            f"{case['num_epochs']} epochs; call train_loader.sampler.set_epoch(epoch) at the start of every epoch",
        )
    expected, expected_losses = single_process_run(case, [report["orders"] for report in data])
    steps = case["num_epochs"] * (len(data[0]["orders"][0]) // case["batch_size"])
    for rank, report in enumerate(data):
        for i, (got, want) in enumerate(zip(report["final"], expected, strict=True)):
            expect_close(
                got,
                want,
                f"rank {rank}'s parameter {i} after {steps} steps, against one process training on both ranks' "
                "batches together from rank 0's weights (DDP averages the gradients; wrap the model before training)",
                atol=1e-5,
            )
    for rank, report in enumerate(data):
        losses = report["losses"]
        expect(
            isinstance(losses, list) and len(losses) == case["num_epochs"],
            f"train_ddp on rank {rank} returned {losses if not isinstance(losses, list) else f'{len(losses)} losses'}; "
            f"return a list of {case['num_epochs']} floats, one per epoch",
        )
        for epoch, (got, want) in enumerate(zip(losses, expected_losses[rank], strict=True)):
            expect(
                isinstance(got, float) and abs(got - want) < 1e-4,
                f"train_ddp on rank {rank}: the loss of epoch {epoch} is not the mean of this rank's batch losses",
            )


def expect_rank0_speaks(outputs, case: dict) -> None:
    """Only rank 0 prints and saves; the checkpoint is the unwrapped model's final state_dict;
    after cleanup() the process group is gone."""
    data = _ranks_data(outputs, case)
    for rank, report in enumerate(data):
        expect(not report["group_after_cleanup"], f"after cleanup() on rank {rank} the process group is still there")
    expect(data[0]["printed"].strip() != "", "train_ddp printed nothing on rank 0; log a line per epoch there")
    for rank, report in enumerate(data[1:], start=1):
        expect(report["printed"] == "", f"train_ddp printed on rank {rank}: only rank 0 logs")
        expect(not report["saves"], f"train_ddp saved a checkpoint on rank {rank}: only rank 0 saves")
    saved = data[0]["saved"]
    expect(saved is not None, "train_ddp on rank 0 saved nothing at save_path")
    expect(isinstance(saved, dict), f"train_ddp saved a {saved}; save the model's state_dict()")
    names = [name for name, _ in TinyClassifier(0).named_parameters()]
    prefixed = [name for name in saved if name.startswith("module.")]
    expect(
        not prefixed,
        f"the checkpoint's names start with 'module.' ({prefixed[:1]}); save the wrapped model's "
        "ddp_model.module.state_dict()",
    )
    expect(sorted(saved) == sorted(names), f"the checkpoint holds {sorted(saved)}; expected the model's {names}")
    for name, value in zip(names, data[0]["final"], strict=True):
        expect_close(saved[name], value, f"the checkpoint's {name}: the weights after the last epoch", atol=0)


def training_case(num_examples: int, batch_size: int, num_epochs: int, seeds: list[int], data_seed: int) -> dict:
    return {
        "world_size": 2,
        "num_examples": num_examples,
        "batch_size": batch_size,
        "num_epochs": num_epochs,
        "lr": 0.5,
        "seeds": seeds,
        "data_seed": data_seed,
    }


# 12 examples per rank in batches of 3, and 11 per rank in batches of 4 (the last 3 dropped).
PUBLIC_TRAINING = {
    "even": training_case(24, 3, 2, [11, 22], 1),
    "uneven": training_case(22, 4, 2, [33, 44], 2),
}


def _public_training(sub, layout):
    return train_in_ranks(sub, PUBLIC_TRAINING[layout])


@ddp
@split(produce=_public_training)
@pytest.mark.parametrize("layout", ["even", "uneven"])
def test_ddp_training_matches_one_process(outputs, layout):
    """train_ddp in two gloo processes: every rank's weights equal one process on both ranks' batches"""
    expect_same_training(outputs, PUBLIC_TRAINING[layout])


@ddp
@split(produce=lambda sub: train_in_ranks(sub, PUBLIC_TRAINING["even"]))
def test_ddp_only_rank0_logs_and_saves(outputs):
    """train_ddp: only rank 0 prints and saves model.module.state_dict(); cleanup() leaves the group"""
    expect_rank0_speaks(outputs, PUBLIC_TRAINING["even"])


def start_in_ranks(sub, case: dict) -> list[dict]:
    """train_ddp for zero epochs in two processes whose models were built with different seeds."""

    def work(rank: int, progress: dict) -> dict:
        progress["stage"] = f"ddp_setup({rank}, 2)"
        sub.ddp_setup(rank, 2)
        features, labels = ddp_data(case)
        progress["stage"] = f"prepare_dataloader(dataset, {case['batch_size']}, {rank}, 2)"
        loader = sub.prepare_dataloader(TensorDataset(features, labels), case["batch_size"], rank, 2)
        model = TinyClassifier(case["seeds"][rank])
        optimizer = compiler_free(torch.optim.SGD)(model.parameters(), lr=case["lr"])
        progress["stage"] = f"train_ddp(..., num_epochs=0, rank={rank})"
        with contextlib.redirect_stdout(io.StringIO()):
            sub.train_ddp(model, loader, optimizer, 0, rank)
        progress["stage"] = f"cleanup() on rank {rank}"
        sub.cleanup()
        return {"final": _parameters(model)}

    return run_processes(work, 2, RANKS_DEADLINE_S)


def expect_rank0_start(outputs, case: dict) -> None:
    data = expect_ranks_finished(outputs, 2, "train_ddp for zero epochs in two processes")
    start = _parameters(TinyClassifier(case["seeds"][0]))
    for rank, report in enumerate(data):
        for i, (got, want) in enumerate(zip(report["final"], start, strict=True)):
            expect_close(
                got,
                want,
                f"rank {rank}'s parameter {i} after train_ddp with num_epochs=0 (the ranks' models were built with "
                "different seeds): every rank starts from rank 0's weights, which DDP(model) copies to all",
                atol=0,
            )


@ddp
@split(produce=lambda sub: start_in_ranks(sub, PUBLIC_TRAINING["even"]))
def test_ddp_ranks_start_from_rank0_weights(outputs):
    """train_ddp wraps the model in DDP first: every rank starts from rank 0's weights"""
    expect_rank0_start(outputs, PUBLIC_TRAINING["even"])


# ---------------------------------------------------------------- ch01.ddp: the sampler


class IndexDataset(torch.utils.data.Dataset):
    """Example i is (a feature vector, i): the batches say which examples a loader picked."""

    def __init__(self, num_examples: int):
        self.num_examples = num_examples

    def __getitem__(self, index):
        return torch.full((2,), float(index)), index

    def __len__(self):
        return self.num_examples


def loader_orders(sub, layouts: list[tuple[int, int, int]]) -> list[dict]:
    """prepare_dataloader(dataset, batch_size, rank, world_size) for every rank of each layout
    (num_examples, batch_size, world_size), in this process: the example indices of every batch in
    epochs 0 and 1 (set_epoch on its sampler), or what went wrong."""
    results = []
    for num_examples, batch_size, world_size in layouts:
        ranks = []
        for rank in range(world_size):
            try:
                loader = sub.prepare_dataloader(IndexDataset(num_examples), batch_size, rank, world_size)
                epochs = []
                for epoch in range(2):
                    if hasattr(loader.sampler, "set_epoch"):
                        loader.sampler.set_epoch(epoch)
                    epochs.append([labels.tolist() for _, labels in loader])
                ranks.append({"batches": epochs})
            except NotImplementedError:
                raise
            except Exception as error:  # noqa: BLE001 - the check reports whatever the student's code raised
                ranks.append({"raised": f"{type(error).__name__}: {error}"[:300]})
        results.append(ranks)
    return results


def expect_loader_split(results, layouts) -> None:
    expect_list(results, len(layouts), "the prepare_dataloader results")
    for (num_examples, batch_size, world_size), ranks in zip(layouts, results, strict=True):
        what = f"prepare_dataloader with {num_examples} examples, batch_size {batch_size}, world_size {world_size}"
        expect_list(ranks, world_size, f"the loaders of {what}")
        for rank, result in enumerate(ranks):
            if "raised" in result:
                fail(
                    f"{what}, rank {rank}: raised {result['raised']} (without a process group the sampler needs "
                    "num_replicas=world_size and rank=rank)"
                )
        per_rank = -(-num_examples // world_size)
        for epoch in range(2):
            batches = [result["batches"][epoch] for result in ranks]
            for rank, rank_batches in enumerate(batches):
                expect(
                    all(len(batch) == batch_size for batch in rank_batches),
                    f"{what}, rank {rank}: batch sizes {[len(b) for b in rank_batches]}; every batch holds batch_size "
                    "examples (drop_last=True drops a smaller last one)",
                )
                expect(
                    len(rank_batches) == per_rank // batch_size,
                    f"{what}, rank {rank}: {len(rank_batches)} batches in epoch {epoch}; each rank gets its "
                    f"share of about 1/{world_size} of the examples",
                )
            full = list(range(num_examples))
            orders = [[i for batch in rank_batches for i in batch] for rank_batches in batches]
            seen = [i for order in orders for i in order]
            expect(
                len(set(seen)) == len(seen) or num_examples % world_size,
                f"{what}: in epoch {epoch} some examples reach two ranks, or one rank twice; give DistributedSampler "
                "num_replicas=world_size and rank=rank",
            )
            if num_examples % (world_size * batch_size) == 0:
                expect(
                    sorted(seen) == full,
                    f"{what}: in epoch {epoch} {len(set(full) - set(seen))} examples reach no rank",
                )
        first = [[i for batch in result["batches"][0] for i in batch] for result in ranks]
        second = [[i for batch in result["batches"][1] for i in batch] for result in ranks]
        expect(
            first != second,
            f"{what}: epoch 1 repeats epoch 0's order after sampler.set_epoch(1); shuffle with a DistributedSampler "
            "(shuffle=True), not the DataLoader",
        )
        ordered = [
            list(range(rank, world_size * per_rank, world_size))[: len(first[rank])] for rank in range(world_size)
        ]
        expect(first != ordered, f"{what}: the examples come in their dataset order; the sampler should shuffle them")


# (num_examples, batch_size, world_size): divisible, a dropped last batch, more ranks.
PUBLIC_LAYOUTS = [(24, 4, 2), (30, 4, 2), (36, 3, 3), (40, 5, 4)]


@ddp
@split(produce=lambda sub: loader_orders(sub, PUBLIC_LAYOUTS))
def test_ddp_samplers_split_the_data(outputs):
    """prepare_dataloader: the ranks' loaders share the examples out, once each, reshuffled each epoch"""
    expect_loader_split(outputs, PUBLIC_LAYOUTS)


# ---------------------------------------------------------------- ch01.ddp: no hang

# A wrong rank must raise at once; the check stops waiting after this many seconds.
WRONG_RANK_DEADLINE_S = 3.0
# The process group timeout the check gives ddp_setup for a world that never fills, and how long
# it waits for the processes to give up before it kills them.
GROUP_TIMEOUT_S = 0.5
WRONG_WORLD_DEADLINE_S = 8.0


def setup_with_wrong_rank(sub, calls: list[tuple[int, int]]) -> list[dict]:
    """ddp_setup(rank, world_size) for each call in its own process, RANK set as torchrun would."""

    def work(index: int, progress: dict) -> dict:
        rank, world_size = calls[index]
        os.environ.update({"RANK": "0", "WORLD_SIZE": str(max(world_size, 1))})
        start = time.monotonic()
        progress["stage"] = f"ddp_setup({rank}, {world_size})"
        try:
            sub.ddp_setup(rank, world_size)
        except NotImplementedError:
            raise
        except Exception as error:  # noqa: BLE001 - the exception's type is what the check looks at
            return {"raised": type(error).__name__, "seconds": time.monotonic() - start}
        return {"raised": None, "seconds": time.monotonic() - start}

    return run_processes(work, len(calls), WRONG_RANK_DEADLINE_S)


def expect_wrong_rank_rejected(outputs, calls) -> None:
    expect_list(outputs, len(calls), "the ddp_setup results")
    for (rank, world_size), result in zip(calls, outputs, strict=True):
        call = f"ddp_setup({rank}, {world_size})"
        if result.get("status") == "hung":
            fail(
                f"{call} was still waiting after {WRONG_RANK_DEADLINE_S:g} s; check rank and world_size and raise "
                "ValueError before init_process_group, which would wait for a process group that can never form"
            )
        expect(result.get("status") == "ok", f"{call} failed unexpectedly: {result.get('error')}")
        raised = result["data"]["raised"]
        expect(
            raised is not None, f"{call} returned; rank {rank} of {world_size} processes is not valid: raise ValueError"
        )
        expect(raised == "ValueError", f"{call} raised {raised}; raise ValueError for an invalid rank or world_size")


WRONG_RANKS = [(2, 2), (-1, 2), (5, 3), (0, 0)]


@ddp
@split(produce=lambda sub: setup_with_wrong_rank(sub, WRONG_RANKS))
def test_ddp_setup_rejects_a_wrong_rank(outputs):
    """ddp_setup raises ValueError at once for a rank outside 0..world_size-1"""
    expect_wrong_rank_rejected(outputs, WRONG_RANKS)


def setup_with_wrong_world_size(sub, world_size: int, processes: int) -> list[dict]:
    """ddp_setup(rank, world_size, timeout=GROUP_TIMEOUT_S) in fewer processes than world_size."""

    def work(rank: int, progress: dict) -> dict:
        start = time.monotonic()
        progress["stage"] = f"ddp_setup({rank}, {world_size}, timeout=...)"
        try:
            sub.ddp_setup(rank, world_size, timeout=datetime.timedelta(seconds=GROUP_TIMEOUT_S))
        except NotImplementedError:
            raise
        except Exception as error:  # noqa: BLE001 - any error is right here, as long as it comes in time
            return {"raised": type(error).__name__, "seconds": time.monotonic() - start}
        return {"raised": None, "seconds": time.monotonic() - start}

    return run_processes(work, processes, WRONG_WORLD_DEADLINE_S)


def expect_wrong_world_fails_in_time(outputs, world_size: int, processes: int) -> None:
    expect_list(outputs, processes, "the ddp_setup results")
    for rank, result in enumerate(outputs):
        call = f"ddp_setup({rank}, {world_size}, timeout=timedelta(seconds={GROUP_TIMEOUT_S:g})) with only {processes} processes"
        if result.get("status") == "hung":
            fail(
                f"{call} was still waiting after {WRONG_WORLD_DEADLINE_S:g} s; pass timeout on to "
                "init_process_group so that a group that never fills fails instead of hanging"
            )
        expect(result.get("status") == "ok", f"{call} failed unexpectedly: {result.get('error')}")
        expect(result["data"]["raised"] is not None, f"{call} returned as if the group had formed")
        expect(
            result["data"]["raised"] != "ValueError" and result["data"]["seconds"] >= GROUP_TIMEOUT_S / 2,
            f"{call} gave up at once with {result['data']['raised']}; rank {rank} of {world_size} is valid, so it "
            "waits for the others, up to its timeout",
        )


@ddp
@split(produce=lambda sub: setup_with_wrong_world_size(sub, 3, 2))
def test_ddp_setup_fails_within_its_timeout(outputs):
    """ddp_setup with a world size larger than the processes started fails within its timeout"""
    expect_wrong_world_fails_in_time(outputs, 3, 2)
