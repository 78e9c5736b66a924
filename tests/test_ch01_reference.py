"""The chapter 1 reference agrees with PyTorch: broadcasting with torch.broadcast_shapes, the
hand-written gradients with torch.autograd, the DDP script with one process training on the
ranks' batches together; and the checks' process runner never waits past its deadline."""

from __future__ import annotations

import random
import time
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from autograder import paths
from autograder.checks.ranks import run_processes


@pytest.fixture(scope="module")
def ch01():
    if not paths.solution_notebook("ch01").exists():
        pytest.skip("needs solutions/ch01")
    import previous_chapters

    return previous_chapters.chapter("ch01")


def test_broadcast_shape_equals_torch_broadcast_shapes_or_raises_where_torch_does(ch01):
    rng = random.Random(0)
    incompatible = 0
    for _ in range(2000):
        a = tuple(rng.choice([0, 1, 1, 2, 3]) for _ in range(rng.randint(0, 4)))
        b = tuple(rng.choice([0, 1, 1, 2, 3]) for _ in range(rng.randint(0, 4)))
        try:
            expected = tuple(torch.broadcast_shapes(a, b))
        except RuntimeError:
            incompatible += 1
            with pytest.raises(ValueError):
                ch01.broadcast_shape(a, b)
            continue
        assert ch01.broadcast_shape(a, b) == expected
        assert tuple((torch.zeros(a) + torch.zeros(b)).shape) == expected
    assert 200 < incompatible < 1800


@pytest.mark.parametrize("n, d", [(1, 1), (7, 3), (64, 10)])
def test_logistic_regression_gradients_equal_autograd(ch01, n, d):
    torch.manual_seed(n * d)
    x, y = torch.randn(n, d), (torch.rand(n) < 0.5).float()
    w, b = torch.randn(d, requires_grad=True), torch.randn((), requires_grad=True)
    loss = F.binary_cross_entropy(torch.sigmoid(x @ w + b), y)
    loss.backward()
    by_hand = ch01.logistic_regression_grads(x, y, w, b)
    for got, want in zip(by_hand, (loss, w.grad, b.grad), strict=True):
        torch.testing.assert_close(got, want.detach())
        assert not got.requires_grad


def test_compute_accuracy_counts_examples_across_a_short_last_batch(ch01):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Dropout(0.5))
    features, labels = torch.randn(11, 3), torch.randint(0, 4, (11,))
    accuracy = ch01.compute_accuracy(model, DataLoader(TensorDataset(features, labels), batch_size=4))
    assert not model.training
    assert accuracy == (model(features).argmax(1) == labels).sum().item() / 11


def test_get_device_falls_back_to_cpu_when_every_probe_raises(ch01):
    broken = mock.Mock(side_effect=RuntimeError("no driver"))
    with (
        mock.patch.object(torch.cuda, "is_available", broken),
        mock.patch.object(torch.backends.mps, "is_available", broken),
    ):
        assert ch01.get_device() == torch.device("cpu")
    with (
        mock.patch.object(torch.cuda, "is_available", broken),
        mock.patch.object(torch.backends.mps, "is_available", lambda: True),
    ):
        assert ch01.get_device() == torch.device("mps")


def test_two_ddp_ranks_train_like_one_process_on_the_whole_batch(ch01):
    """Two gloo ranks, each on its half of every step's batch, end with the weights of plain SGD on
    the full batch in one process, batches taken in DistributedSampler's order."""
    torch.manual_seed(0)
    features, labels = torch.randn(32, 2), torch.randint(0, 2, (32,))
    batch_size, epochs = 4, 2

    def fresh_model():
        torch.manual_seed(7)
        return ch01.NeuralNetwork(2, 2)

    def rank_work(rank, progress):
        ch01.ddp_setup(rank, 2)
        loader = ch01.prepare_dataloader(TensorDataset(features, labels), batch_size, rank, 2)
        model = fresh_model() if rank == 0 else ch01.NeuralNetwork(2, 2)
        ch01.train_ddp(model, loader, torch.optim.SGD(model.parameters(), lr=0.2), epochs, rank)
        ch01.cleanup()
        return [p.detach() for p in model.parameters()]

    results = run_processes(rank_work, 2, deadline_s=60)
    assert [r["status"] for r in results] == ["ok", "ok"], results

    model = fresh_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    samplers = [DistributedSampler(range(32), num_replicas=2, rank=r, shuffle=True) for r in range(2)]
    for epoch in range(epochs):
        orders = []
        for sampler in samplers:
            sampler.set_epoch(epoch)
            orders.append(list(sampler))
        for step in range(16 // batch_size):
            batch = [i for order in orders for i in order[step * batch_size : (step + 1) * batch_size]]
            optimizer.zero_grad()
            F.cross_entropy(model(features[batch]), labels[batch]).backward()
            optimizer.step()
    for rank in range(2):
        for got, want in zip(results[rank]["data"], model.parameters(), strict=True):
            torch.testing.assert_close(got, want.detach())


def test_a_rank_that_never_returns_is_killed_at_the_deadline():
    def hang(rank, progress):
        progress["stage"] = "sleeping"
        time.sleep(60 if rank else 0)
        return rank

    start = time.monotonic()
    results = run_processes(hang, 2, deadline_s=1.5)
    assert time.monotonic() - start < 5
    assert results[0] == {"status": "ok", "data": 0}
    assert results[1]["status"] == "hung"


def test_a_rank_too_many_raises_at_once_instead_of_waiting(ch01):
    def wrong(rank, progress):
        ch01.ddp_setup(2, 2)

    results = run_processes(wrong, 1, deadline_s=3)
    assert results[0]["status"] == "error" and results[0]["error"].startswith("ValueError")
