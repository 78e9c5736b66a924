"""The chapter 11 reference agrees with PyTorch: its softmax, log-sum-exp and cross-entropy with
F.softmax, torch.logsumexp and F.cross_entropy on shifted and scaled logits; its SGD, Adam and AdamW
with torch.optim's over 1,000 float64 steps for every hyperparameter case; its clipping with
clip_grad_norm_; its Muon with an independent transcription of Keller Jordan's update, and Muon's
AdamW half with torch.optim.AdamW.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder import paths
from autograder.checks.test_ch11 import PARAMETER_NAMES, optimizer_case, optimizer_run, tiny_data, tiny_network


@pytest.fixture(scope="module")
def ch11():
    if not paths.solution_notebook("ch11").exists():
        pytest.skip("needs solutions/ch11")
    import previous_chapters

    return previous_chapters.chapter("ch11")


TORCH = SimpleNamespace(SGD=torch.optim.SGD, Adam=torch.optim.Adam, AdamW=torch.optim.AdamW)


def _logits() -> list[tuple[torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 9, generator=generator)
    return [
        (x, -1),
        (x + 100, -1),
        (x + 1000, 0),
        (x * 1000, -1),
        (x - 1000, 1),
        (torch.randn(2, 4, 6, generator=generator) * 1000, 1),
    ]


@pytest.mark.parametrize("index", range(6))
def test_stable_softmax_and_logsumexp_match_torch_on_shifted_and_scaled_logits(ch11, index):
    x, dim = _logits()[index]
    got = ch11.stable_softmax(x, dim=dim)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, F.softmax(x, dim=dim), atol=1e-6, rtol=0)
    torch.testing.assert_close(ch11.logsumexp(x, dim=dim), torch.logsumexp(x, dim=dim), atol=1e-4, rtol=1e-6)


def test_masked_entries_get_zero_weight_and_an_all_masked_row_minus_inf(ch11):
    x = torch.tensor([[1.0, -math.inf, 2.0], [-math.inf, -math.inf, -math.inf]])
    assert ch11.stable_softmax(x[:1])[0, 1].item() == 0.0
    assert ch11.logsumexp(x)[1].item() == -math.inf == torch.logsumexp(x, dim=-1)[1].item()


@pytest.mark.parametrize("shape", [(7, 5), (2, 6, 11)])
@pytest.mark.parametrize("scale", [1.0, 1000.0])
def test_cross_entropy_from_logits_matches_f_cross_entropy_and_its_gradient(ch11, shape, scale):
    generator = torch.Generator().manual_seed(1)
    logits = (torch.randn(*shape, generator=generator) * scale + 100).requires_grad_(True)
    targets = torch.randint(0, shape[-1], shape[:-1], generator=generator)
    ours = ch11.cross_entropy_from_logits(logits, targets)
    (our_grad,) = torch.autograd.grad(ours, logits)
    theirs = F.cross_entropy(logits.reshape(-1, shape[-1]), targets.reshape(-1))
    (their_grad,) = torch.autograd.grad(theirs, logits)
    assert ours.shape == () and torch.isfinite(ours)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(our_grad, their_grad, atol=1e-6, rtol=0)


def _bench():
    generator = torch.Generator().manual_seed(3)
    return tiny_network(generator), tiny_data(generator)


GROUPS = [
    {"names": ["w1", "b1", "unused"], "options": {"lr": 0.02}},
    {"names": ["w2", "gain", "w3", "b3"], "options": {}},
]
OPTIMIZER_CASES = [
    ("SGD", {"lr": 0.1}, None),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, None),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, GROUPS),
    ("Adam", {"lr": 0.01}, None),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1}, None),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}, GROUPS),
    ("AdamW", {"lr": 0.01}, None),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.0}, None),
    ("AdamW", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.5}, None),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.2}, GROUPS),
]


@pytest.mark.parametrize("name, kwargs, groups", OPTIMIZER_CASES)
def test_optimizers_match_torch_optim_over_1000_float64_steps(ch11, name, kwargs, groups):
    init, data = _bench()
    case = optimizer_case(name, kwargs, init, data, steps=1000, groups=groups, drop_every=3)
    ours, theirs = optimizer_run(ch11, case), optimizer_run(TORCH, case)
    for mine, torchs in zip(ours["snapshots"], theirs["snapshots"]):
        for parameter in PARAMETER_NAMES:
            torch.testing.assert_close(mine[parameter], torchs[parameter], atol=1e-5, rtol=0)
    assert torch.equal(ours["snapshots"][-1]["unused"], init["unused"])


def _clip_params(generator):
    params = [nn.Parameter(torch.randn(4, 3, generator=generator)), nn.Parameter(torch.randn(5, generator=generator))]
    frozen = nn.Parameter(torch.randn(2, 2, generator=generator), requires_grad=False)
    return params, frozen


@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_clip_grad_norm_with_a_frozen_parameter(ch11, scale):
    generator = torch.Generator().manual_seed(4)
    ours, frozen = _clip_params(generator)
    grads = [torch.randn(p.shape, generator=generator) * scale for p in ours]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    for p, q, grad in zip(ours, theirs, grads):
        p.grad, q.grad = grad.clone(), grad.clone()
    our_total = ch11.clip_grad_norm((p for p in [*ours, frozen]), max_norm=1.0)
    their_total = torch.nn.utils.clip_grad_norm_([*theirs, frozen.detach().clone()], max_norm=1.0)
    torch.testing.assert_close(our_total, their_total)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.grad, q.grad)
    assert frozen.grad is None


def test_lr_at_step_has_the_stated_endpoints(ch11):
    def lr(step):
        return ch11.lr_at_step(step, max_lr=1.0, warmup_steps=4, total_steps=20, min_lr=0.1)

    assert [lr(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr(4) == 1.0
    assert math.isclose(lr(12), 0.55)
    assert math.isclose(lr(19), 0.1 + 0.45 * (1 + math.cos(math.pi * 15 / 16)))
    assert lr(20) == lr(500) == 0.1
    assert ch11.lr_at_step(0, max_lr=2.0, warmup_steps=0, total_steps=10, min_lr=0.0) == 2.0
    assert isinstance(lr(7), float)


def test_lr_at_step_as_a_lambda_lr_factor_drives_torch_scheduler(ch11):
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.5)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: ch11.lr_at_step(step, 1.0, 3, 10, 0.1))
    seen = []
    for _ in range(12):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == pytest.approx([0.5 * ch11.lr_at_step(s, 1.0, 3, 10, 0.1) for s in range(12)])


def _keller_newton_schulz(G, steps=5):
    """Keller Jordan's zeropower_via_newtonschulz5, in G's dtype instead of bfloat16."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


@pytest.mark.parametrize("shape", [(40, 12), (12, 40), (24, 24)])
def test_newton_schulz_matches_keller_jordans_and_stays_near_the_polar_factor(ch11, shape):
    generator = torch.Generator().manual_seed(5)
    G = torch.randn(*shape, generator=generator, dtype=torch.float64)
    ours = ch11.zeropower_via_newtonschulz5(G)
    torch.testing.assert_close(ours, _keller_newton_schulz(G), atol=1e-10, rtol=0)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    keep = S / S.norm() > 1e-2  # singular values the five steps lift into the band
    singular = torch.linalg.svdvals(ours)[: int(keep.sum())]
    assert singular.min() > 0.6 and singular.max() < 1.25


def _keller_muon_step(params, grads, buffers, lr, momentum, weight_decay, nesterov):
    """Keller Jordan's muon_update and step, transcribed from his repository."""
    for p, g, buf in zip(params, grads, buffers):
        buf.lerp_(g, 1 - momentum)
        update = g.lerp(buf, momentum) if nesterov else buf.clone()
        update = _keller_newton_schulz(update) * max(1, g.size(-2) / g.size(-1)) ** 0.5
        p.mul_(1 - lr * weight_decay)
        p.add_(update, alpha=-lr)


@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_matches_keller_jordans_update_on_matrices(ch11, nesterov):
    generator = torch.Generator().manual_seed(6)
    shapes = [(8, 3), (3, 8), (5, 5)]
    ours = [nn.Parameter(torch.randn(*s, generator=generator, dtype=torch.float64)) for s in shapes]
    theirs = [p.detach().clone() for p in ours]
    buffers = [torch.zeros_like(p) for p in theirs]
    optimizer = ch11.Muon(ours, lr=0.03, momentum=0.9, nesterov=nesterov, weight_decay=0.1)
    for _ in range(50):
        grads = [torch.randn(p.shape, generator=generator, dtype=torch.float64) for p in ours]
        for p, g in zip(ours, grads):
            p.grad = g.clone()
        optimizer.step()
        _keller_muon_step(theirs, grads, buffers, 0.03, 0.9, 0.1, nesterov)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.detach(), q, atol=1e-10, rtol=0)


def test_muon_treats_every_other_parameter_with_torch_adamw(ch11):
    init, data = _bench()
    options = {"adamw_lr": 0.01, "adamw_betas": (0.8, 0.9), "adamw_eps": 1e-3, "weight_decay": 0.1}
    vectors = ["b1", "gain", "b3"]
    ours = {n: nn.Parameter(init[n].clone()) for n in vectors}
    theirs = {n: nn.Parameter(init[n].clone()) for n in vectors}
    muon = ch11.Muon(list(ours.values()), **options)
    adamw = torch.optim.AdamW(list(theirs.values()), lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)
    generator = torch.Generator().manual_seed(7)
    for _ in range(300):
        for name in vectors:
            grad = torch.randn(ours[name].shape, generator=generator, dtype=torch.float64)
            ours[name].grad, theirs[name].grad = grad.clone(), grad.clone()
        muon.step()
        adamw.step()
    for name in vectors:
        torch.testing.assert_close(ours[name].detach(), theirs[name].detach(), atol=1e-10, rtol=0)


def test_weight_decay_groups_of_chapter_4s_gpt(ch11):
    from previous_chapters import GPTModel

    config = {"vocab_size": 50, "context_length": 8, "emb_dim": 16, "n_heads": 2, "n_layers": 2}
    model = GPTModel({**config, "drop_rate": 0.0, "qkv_bias": True})
    decay, no_decay = ch11.param_groups_for_weight_decay(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 and "emb" not in names[id(p)] for p in decay["params"])
    assert {"tok_emb.weight", "pos_emb.weight", "final_norm.scale", "final_norm.shift"} <= {
        names[id(p)] for p in no_decay["params"]
    }
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
