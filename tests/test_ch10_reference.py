"""The chapter 10 reference engine agrees with torch.autograd: every operation's output and
input gradients in float64, on shapes that broadcast in every way (the checks' own case lists,
drawn from several seeds); its gradient check agrees with torch.autograd.gradcheck's verdicts;
its training step takes the steps torch.optim.SGD takes; and the checks refuse an engine that
calls PyTorch's autograd.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder import paths
from autograder.checks import test_ch10 as checks
from autograder.forbidden import ForbiddenCall

SEEDS = [0, 1, 2]
CASE_LISTS = {
    "elementwise": checks.elementwise_cases,
    "matmul_and_reductions": checks.matmul_reduction_cases,
    "activations": checks.activation_cases,
    "softmax_cross_entropy": checks.softmax_cases,
}


@pytest.fixture(scope="module")
def ch10():
    if not paths.solution_notebook("ch10").exists():
        pytest.skip("needs solutions/ch10")
    import previous_chapters

    return previous_chapters.chapter("ch10")


def _assert_matches_torch(result: dict, case: dict) -> None:
    assert "raised" not in result, f"{checks.describe(case)}: {result.get('raised')}"
    out, grads = checks.torch_result(case)
    np.testing.assert_allclose(result["out"], out.numpy(), rtol=1e-10, atol=1e-12, err_msg=checks.describe(case))
    float_grads = [g for g, x in zip(grads, case["inputs"]) if not checks.is_targets(x)]
    assert len(result["grads"]) == len(float_grads)
    for mine, theirs in zip(result["grads"], float_grads):
        if theirs is None:
            assert mine is None, checks.describe(case)
        else:
            np.testing.assert_allclose(mine, theirs.numpy(), rtol=1e-9, atol=1e-11, err_msg=checks.describe(case))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("group", list(CASE_LISTS))
def test_reference_operations_match_torch_autograd(ch10, group, seed):
    for case in CASE_LISTS[group](seed):
        _assert_matches_torch(checks.run_expression(ch10, case), case)


@pytest.mark.parametrize("seed", range(7))
def test_cases_cover_every_broadcasting_class(seed):
    """On every seed, binary operators meet every pairing of shapes, including scalars on both sides."""
    cases = checks.elementwise_cases(seed)
    shapes = {
        (tuple(c["inputs"][0].shape), tuple(c["inputs"][1].shape)) for c in cases if c["program"] in checks.BINARY
    }
    assert set(checks.broadcast_shapes(checks.Draw(seed)).values()) <= shapes
    assert any(x == () for x, _ in shapes) and any(y == () for _, y in shapes)
    assert any(len(x) < len(y) for x, y in shapes) and any(len(x) > len(y) for x, y in shapes)
    assert any(1 in x and 1 in y for x, y in shapes)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_unbroadcast_matches_sum_to_size(ch10, seed):
    for case in checks.unbroadcast_cases(seed):
        shape = tuple(case["shape"])
        mine = ch10.unbroadcast(case["grad"].numpy(), shape)
        expected = case["grad"].sum() if shape == () else case["grad"].sum_to_size(shape)
        assert mine.shape == shape
        np.testing.assert_allclose(mine, expected.numpy(), rtol=1e-12)


def test_reference_mlp_gradients_match_torch(ch10):
    """A two-layer MLP with a GELU, a softmax-weighted sum and a cross-entropy: one graph, every gradient."""
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(5, 4)), rng.normal(size=(4, 6)), rng.normal(size=6), rng.normal(size=(6, 3))]
    targets = np.array([0, 2, 1, 1, 0])
    ours = [ch10.Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    x, w1, b1, w2 = ours
    h = ch10.gelu(x @ w1 + b1)
    loss = ch10.cross_entropy(h @ w2, targets) + (ch10.softmax(h, axis=0) * h).mean()
    loss.backward()
    tx, tw1, tb1, tw2 = theirs
    th = F.gelu(tx @ tw1 + tb1, approximate="tanh")
    tloss = F.cross_entropy(th @ tw2, torch.from_numpy(targets)) + (torch.softmax(th, dim=0) * th).mean()
    tloss.backward()
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, reference.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_reference_gradient_check_agrees_with_torch_gradcheck(ch10):
    """For a correct and a slipped VJP, the reference's verdict is torch.autograd.gradcheck's."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=4)

    def ours(slip: float):
        def f(a, b):
            def vjp(g):
                return g * np.cos(a.data) * b.data * (1 + slip), g * np.sin(a.data).sum(axis=0)

            return ch10.Tensor((np.sin(a.data) * b.data).sum(), _parents=(a, b), _vjp=vjp)

        return f

    class Slipped(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b, slip):
            ctx.save_for_backward(a, b)
            ctx.slip = slip
            return (torch.sin(a) * b).sum()

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * torch.cos(a) * b * (1 + ctx.slip), g * torch.sin(a).sum(dim=0), None

    for slip in [0.0, 1e-2]:
        verdict = ch10.gradient_check(ours(slip), [x, y], atol=1e-5, rtol=1e-3)
        tx, ty = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
        torch_verdict = torch.autograd.gradcheck(
            lambda a, b, s=slip: Slipped.apply(a, b, s), (tx, ty), atol=1e-5, rtol=1e-3, raise_exception=False
        )
        assert verdict is torch_verdict is (slip == 0.0)


def test_reference_numerical_grad_matches_autograd(ch10):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3))
    before = x.copy()
    (numeric,) = ch10.numerical_grad(lambda a: np.sum(np.tanh(a) ** 2), [x])
    tx = torch.tensor(x, requires_grad=True)
    (torch.tanh(tx) ** 2).sum().backward()
    np.testing.assert_allclose(numeric, tx.grad.numpy(), atol=1e-8)
    assert np.array_equal(x, before)


def test_reference_train_step_matches_torch_sgd(ch10):
    case = checks.train_case(3)
    params = {name: ch10.Tensor(v.numpy(), requires_grad=True) for name, v in case["params"].items()}
    torch_params = {name: v.clone().requires_grad_(True) for name, v in case["params"].items()}
    optimizer = torch.optim.SGD(list(torch_params.values()), lr=case["lr"])
    for _ in range(case["steps"]):
        loss = ch10.train_step(params, case["x"].numpy(), case["targets"].numpy(), case["lr"])
        optimizer.zero_grad()
        p = torch_params
        torch_loss = F.cross_entropy(torch.tanh(case["x"] @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], case["targets"])
        torch_loss.backward()
        optimizer.step()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
        for name, param in params.items():
            np.testing.assert_allclose(param.data, torch_params[name].detach().numpy(), rtol=1e-10, atol=1e-12)
            assert param.grad is None


def test_checks_refuse_an_engine_that_calls_torch_autograd(ch10):
    """A tanh whose VJP asks PyTorch for the gradient fails with a message naming the call."""

    class Cheating:
        def __init__(self, real):
            self.namespace = dict(real.namespace)
            self.namespace["tanh"] = self.tanh
            self.Tensor = real.Tensor

        def tanh(self, a):
            def vjp(g):
                t = torch.tensor(a.data, requires_grad=True)
                torch.tanh(t).backward(torch.from_numpy(g))
                return (t.grad.numpy(),)

            return self.Tensor(np.tanh(a.data), _parents=(a,), _vjp=vjp)

    case = checks.op_case("tanh(x)", [torch.randn(3, dtype=torch.float64)])
    with pytest.raises(ForbiddenCall, match="torch.Tensor.backward"):
        checks.run_expression(Cheating(ch10), case)
    assert "raised" not in checks.run_expression(ch10, case)
    torch.tanh(torch.ones(1, requires_grad=True)).sum().backward()  # autograd works again afterwards
