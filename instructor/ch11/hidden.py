"""Hidden checks of chapter 11: the live reference against the submission on inputs, hyperparameters and
initial weights drawn from the seed. Every case class (shifted, scaled and masked logits; momentum on and
off, Nesterov, weight decay, groups, missing gradients; tied embeddings; norms above and below the limit;
every part of the schedule; tall, wide and square matrices) is drawn on every seed; the seed changes only
values and sizes. Messages say what differs, never the inputs or expected values."""

from __future__ import annotations

import math
import random

import torch

from autograder.checks.test_ch11 import (
    OPTIMIZER_ATOL,
    SOFTMAX_ATOL,
    GroupsModel,
    adam,
    clip_and_schedule,
    clip_run,
    cross_entropy_runs,
    expect_clip_run,
    expect_groups,
    expect_orthogonalized,
    expect_same_run,
    group_names,
    muon,
    numerics,
    optimizer_case,
    optimizer_run,
    sgd,
    tiny_data,
    tiny_network,
    weight_decay_groups,
    well_conditioned,
)
from autograder.compare import expect, expect_close, expect_list, expect_tensor, fail
from autograder.split import split

FIRST, SECOND = ["w1", "b1", "unused"], ["w2", "gain", "w3", "b3"]

# ---------------------------------------------------------------- ch11.stable_softmax


def _logits_case(seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape, dtype=torch.float32):
        return torch.randn(*shape, generator=generator, dtype=dtype)

    rows, cols = rng.randint(2, 6), rng.randint(3, 12)
    masked = draw(rows, cols)
    masked[0, rng.randrange(cols)] = -math.inf
    masked[-1, : cols - 1] = -math.inf
    cases = [
        (draw(rows, cols) + rng.uniform(50, 2000), -1),
        (draw(rows, cols) * rng.uniform(200, 5000), -1),
        (draw(rows, cols) - rng.uniform(200, 2000), 0),
        (draw(rng.randint(1, 3), rng.randint(2, 6), rng.randint(2, 6)) * rng.uniform(100, 1000), rng.choice([0, 1, 2])),
        (draw(rng.randint(2, 20)) * rng.uniform(10, 500), 0),
        (draw(rows, cols, dtype=torch.float64) * rng.uniform(100, 1000), 1),
        (masked, -1),
    ]
    classes = rng.randint(2, 30)
    cross_entropy = [
        draw(rng.randint(1, 9), classes) * rng.uniform(1, 2000),
        draw(2, rng.randint(1, 6), classes) + rng.uniform(0, 500),
    ]
    return {
        "softmax": [{"x": x, "dim": dim} for x, dim in cases],
        "cross_entropy": [
            {"logits": logits, "targets": torch.randint(0, classes, logits.shape[:-1], generator=generator)}
            for logits in cross_entropy
        ],
    }


def _logits_outputs(sub, case):
    ce = cross_entropy_runs(sub.cross_entropy_from_logits, case["cross_entropy"])
    return {
        "softmax": [sub.stable_softmax(one["x"].clone(), dim=one["dim"]) for one in case["softmax"]],
        "logsumexp": [sub.logsumexp(one["x"].clone(), dim=one["dim"]) for one in case["softmax"]],
        "cross_entropy": ce,
    }


@numerics
@split(setup=_logits_case, produce=_logits_outputs)
def test_numerics_agree_with_reference(outputs, case, ref):
    """hidden: softmax, log-sum-exp and cross-entropy (and its gradient) of shifted, scaled and masked logits"""
    expect_list(outputs["softmax"], len(case["softmax"]), "the stable_softmax results")
    expect_list(outputs["logsumexp"], len(case["softmax"]), "the logsumexp results")
    for one, soft, lse in zip(case["softmax"], outputs["softmax"], outputs["logsumexp"]):
        x, dim = one["x"], one["dim"]
        what = f"a hidden {'x'.join(map(str, x.shape))} {str(x.dtype)[6:]} input along dim {dim}"
        expect_tensor(soft, f"stable_softmax of {what}", dtype=x.dtype)
        expect(bool(torch.isfinite(soft).all()), f"stable_softmax of {what} gives nan or inf")
        expect_close(soft, ref.stable_softmax(x, dim=dim), f"stable_softmax of {what}", atol=SOFTMAX_ATOL)
        expected = ref.logsumexp(x, dim=dim)
        expect_tensor(lse, f"logsumexp of {what}", shape=tuple(expected.shape))
        expect_close(lse, expected, f"logsumexp of {what}", atol=1e-4, rtol=1e-6)
    expect_list(outputs["cross_entropy"], len(case["cross_entropy"]), "the cross_entropy_from_logits results")
    for one, got in zip(case["cross_entropy"], outputs["cross_entropy"]):
        logits = one["logits"].clone().requires_grad_(True)
        loss = ref.cross_entropy_from_logits(logits, one["targets"])
        loss.backward()
        what = f"cross_entropy_from_logits of hidden {'x'.join(map(str, logits.shape))} logits"
        expect_tensor(got["loss"], what, shape=())
        expect_close(got["loss"], loss.detach(), what, atol=1e-4, rtol=1e-6)
        expect_tensor(got["grad"], f"the gradient of {what}", shape=tuple(logits.shape))
        expect_close(got["grad"], logits.grad, f"the gradient of {what}", atol=1e-6)


# ---------------------------------------------------------------- the optimizers


def _bench(seed: int):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    return rng, tiny_network(generator), tiny_data(generator, batches=rng.randint(2, 5))


def _groups(first: dict, second: dict) -> list[dict]:
    return [{"names": FIRST, "options": first}, {"names": SECOND, "options": second}]


def _runs(outputs, case, ref) -> None:
    expect_list(outputs, len(case), "the optimizer runs")
    for got, one in zip(outputs, case):
        expect_same_run(got, optimizer_run(ref, one), one, atol=OPTIMIZER_ATOL)


def _produce_runs(sub, case):
    return [optimizer_run(sub, one) for one in case]


def _sgd_case(seed):
    rng, init, data = _bench(seed)

    def case(kwargs, steps=200, groups=None, drop_every=0):
        return optimizer_case("SGD", kwargs, init, data, steps=steps, groups=groups, drop_every=drop_every)

    lr, momentum, decay = rng.uniform(0.02, 0.2), rng.uniform(0.5, 0.95), rng.uniform(1e-3, 0.1)
    return [
        case({"lr": lr}),
        case({"lr": lr, "weight_decay": decay}, drop_every=3),
        case({"lr": lr / 2, "momentum": momentum}),
        case({"lr": lr / 2, "momentum": momentum, "nesterov": True}, drop_every=3),
        case(
            {"lr": lr / 2, "momentum": momentum, "nesterov": True, "weight_decay": decay},
            steps=1000,
            groups=_groups({"lr": rng.uniform(0.005, 0.05), "momentum": 0.0}, {"weight_decay": 0.0, "nesterov": False}),
            drop_every=3,
        ),
    ]


@sgd
@split(setup=_sgd_case, produce=_produce_runs)
def test_sgd_agrees_with_reference(outputs, case, ref):
    """hidden: SGD on a drawn network and hyperparameters: momentum 0 and > 0, Nesterov, weight decay, groups, 1,000 steps"""
    _runs(outputs, case, ref)


def _adam_case(seed):
    rng, init, data = _bench(seed)

    def case(name, kwargs, steps=150, groups=None, drop_every=0):
        return optimizer_case(name, kwargs, init, data, steps=steps, groups=groups, drop_every=drop_every)

    # Adam at a large learning rate never settles and its trajectory turns chaotic: after a thousand
    # steps rounding alone (sqrt(v / c) against sqrt(v) / sqrt(c)) would show. Rates up to 1e-2 stay put.
    lr, decay = rng.uniform(2e-3, 1e-2), rng.uniform(0.01, 0.3)
    betas, eps = (rng.uniform(0.5, 0.9), rng.uniform(0.9, 0.99)), rng.uniform(1e-4, 1e-2)
    return [
        case("Adam", {"lr": lr}),
        case("Adam", {"lr": lr, "betas": betas, "eps": eps, "weight_decay": decay}, drop_every=3),
        case("AdamW", {"lr": lr}),
        case("AdamW", {"lr": lr, "betas": betas, "eps": eps, "weight_decay": decay}, drop_every=3),
        case("Adam", {"lr": lr, "weight_decay": decay}, groups=_groups({"lr": lr / 3}, {"weight_decay": 0.0})),
        case(
            "AdamW",
            {"lr": lr, "weight_decay": decay},
            steps=1000,
            groups=_groups({"lr": lr / 3, "eps": eps}, {"weight_decay": 0.0, "betas": betas}),
            drop_every=3,
        ),
    ]


@adam
@split(setup=_adam_case, produce=_produce_runs)
def test_adam_and_adamw_agree_with_reference(outputs, case, ref):
    """hidden: Adam and AdamW on a drawn network and hyperparameters: decay, betas, eps, groups, 1,000 steps"""
    _runs(outputs, case, ref)


def _muon_case(seed):
    rng, init, data = _bench(seed)

    def case(kwargs, steps=150, groups=None, drop_every=0):
        return optimizer_case("Muon", kwargs, init, data, steps=steps, groups=groups, drop_every=drop_every)

    lr, adamw_lr = rng.uniform(0.005, 0.03), rng.uniform(1e-3, 1e-2)
    momentum, decay = rng.uniform(0.8, 0.97), rng.uniform(0.01, 0.2)
    return [
        case({"lr": lr, "adamw_lr": adamw_lr}),
        case({"lr": lr, "momentum": momentum, "nesterov": False, "weight_decay": decay, "adamw_lr": adamw_lr}),
        case(
            {"adamw_lr": adamw_lr, "adamw_betas": (rng.uniform(0.5, 0.9), rng.uniform(0.9, 0.99)), "adamw_eps": 1e-3},
            drop_every=3,
        ),
        case({"lr": lr, "ns_steps": rng.randint(2, 4), "weight_decay": decay}),
        case(
            {"lr": lr, "momentum": momentum},
            steps=300,
            groups=_groups({"lr": lr / 3, "adamw_lr": adamw_lr}, {"weight_decay": decay, "nesterov": False}),
            drop_every=3,
        ),
    ]


@muon
@split(setup=_muon_case, produce=_produce_runs)
def test_muon_agrees_with_reference(outputs, case, ref):
    """hidden: Muon on a drawn network and hyperparameters: Nesterov on and off, decay, ns_steps, AdamW settings, groups"""
    _runs(outputs, case, ref)


def _newton_schulz_case(seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    short, long = rng.randint(2, 12), rng.randint(13, 40)
    shapes = [(long, short), (short, long), (short, short)]
    matrices = [
        {"G": torch.randn(*shape, generator=generator, dtype=dtype) * rng.uniform(0.01, 100), "steps": steps}
        for shape in shapes
        for dtype, steps in ((torch.float32, 5), (torch.float64, rng.randint(1, 6)))
    ]
    conditioned = [
        well_conditioned(shape, generator) for shape in ((rng.randint(20, 64), short), (short, rng.randint(20, 64)))
    ]
    conditioned.append(well_conditioned((long, long), generator))
    return {"matrices": matrices, "conditioned": conditioned}


def _newton_schulz_outputs(sub, case):
    return {
        "matrices": [sub.zeropower_via_newtonschulz5(one["G"].clone(), steps=one["steps"]) for one in case["matrices"]],
        "conditioned": [sub.zeropower_via_newtonschulz5(one["G"].clone()) for one in case["conditioned"]],
    }


@muon
@split(setup=_newton_schulz_case, produce=_newton_schulz_outputs)
def test_newton_schulz_agrees_with_reference(outputs, case, ref):
    """hidden: the iteration on tall, wide and square matrices of drawn sizes and scales, and its properties"""
    expect_list(outputs["matrices"], len(case["matrices"]), "the zeropower_via_newtonschulz5 results")
    for got, one in zip(outputs["matrices"], case["matrices"]):
        G = one["G"]
        what = f"zeropower_via_newtonschulz5 of a hidden {G.shape[0]}x{G.shape[1]} {str(G.dtype)[6:]} matrix, steps={one['steps']}"
        expect_tensor(got, what, shape=tuple(G.shape), dtype=G.dtype)
        expected = ref.zeropower_via_newtonschulz5(G, steps=one["steps"])
        expect_close(got, expected, what, atol=1e-4 if G.dtype == torch.float32 else 1e-8, rtol=0.0)
    expect_list(outputs["conditioned"], len(case["conditioned"]), "the zeropower_via_newtonschulz5 results")
    for got, one in zip(outputs["conditioned"], case["conditioned"]):
        expect_orthogonalized(got, one)


# ---------------------------------------------------------------- ch11.weight_decay_groups


def _groups_case(seed):
    rng = random.Random(seed)
    return [
        {
            "spec": {
                "dim": rng.randint(2, 8),
                "vocab": rng.randint(5, 30),
                "context": rng.randint(2, 9),
                "layers": rng.randint(2, 5),
                "tied": tied,
            },
            "weight_decay": rng.uniform(0.01, 0.3),
            "seed": seed,
        }
        for tied in (True, False)
    ]


def _groups_outputs(sub, case):
    results = []
    for one in case:
        torch.manual_seed(one["seed"])
        model = GroupsModel(one["spec"])
        results.append(group_names(sub.param_groups_for_weight_decay(model, one["weight_decay"]), model))
    return results


@weight_decay_groups
@split(setup=_groups_case, produce=_groups_outputs)
def test_weight_decay_groups_agree_with_reference(outputs, case, ref):
    """hidden: models of drawn sizes, with and without a tied head"""
    expect_list(outputs, len(case), "the groups")
    for got, one in zip(outputs, case):
        torch.manual_seed(one["seed"])
        model = GroupsModel(one["spec"])
        names = {id(p): n for n, p in model.named_parameters()}
        groups = ref.param_groups_for_weight_decay(model, one["weight_decay"])
        expected = [[names[id(p)] for p in group["params"]] for group in groups]
        what = f"param_groups_for_weight_decay on a hidden model with{'' if one['spec']['tied'] else 'out'} a tied head"
        expect_groups(got, expected, one["weight_decay"], what)


# ---------------------------------------------------------------- ch11.clip_and_schedule


def _clip_case(seed):
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for what, scale, as_, dtype in (
        ("hidden gradients above max_norm", rng.uniform(2, 50), "list", torch.float32),
        ("hidden gradients below max_norm", rng.uniform(1e-3, 0.05), "list", torch.float32),
        ("a hidden generator of float64 parameters", rng.uniform(1, 10), "generator", torch.float64),
        ("a hidden single tensor", rng.uniform(1, 10), "tensor", torch.float32),
        ("tiny hidden gradients", rng.uniform(1e-6, 1e-5), "list", torch.float32),
    ):
        shapes = [tuple(rng.randint(1, 5) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(3, 6))]
        params = [torch.randn(*shape, generator=generator, dtype=dtype) for shape in shapes]
        grads = [torch.randn(*shape, generator=generator, dtype=dtype) * scale for shape in shapes]
        grads[rng.randrange(1, len(grads))] = None
        if as_ == "tensor":
            grads = [grads[0]] + [None] * (len(grads) - 1)
        max_norm = rng.uniform(1e-7, 1e-6) if scale < 1e-4 else rng.uniform(0.2, 2.0)
        cases.append({"what": what, "params": params, "grads": grads, "max_norm": max_norm, "as": as_})
    warmup = rng.randint(1, 20)
    total = warmup + rng.randint(5, 200)
    max_lr = rng.uniform(1e-4, 1e-2)
    min_lr = max_lr * rng.uniform(0.0, 0.3)
    steps = [
        0,
        rng.randrange(warmup),
        warmup - 1,
        warmup,
        rng.randrange(warmup, total),
        total - 1,
        total,
        total + rng.randint(1, 99),
    ]
    schedule = [
        {"step": s, "max_lr": max_lr, "warmup_steps": warmup, "total_steps": total, "min_lr": min_lr} for s in steps
    ]
    schedule += [
        {"step": s, "max_lr": max_lr, "warmup_steps": 0, "total_steps": total, "min_lr": min_lr}
        for s in (0, total // 2)
    ]
    return {"clip": cases, "schedule": schedule}


def _clip_outputs(sub, case):
    return {
        "clip": [clip_run(sub.clip_grad_norm, one) for one in case["clip"]],
        "schedule": [sub.lr_at_step(**args) for args in case["schedule"]],
    }


@clip_and_schedule
@split(setup=_clip_case, produce=_clip_outputs)
def test_clip_and_schedule_agree_with_reference(outputs, case, ref):
    """hidden: clipping drawn gradients (above and below the limit, a frozen parameter, a generator, a tensor)
    and the schedule at every kind of step"""
    expect_list(outputs["clip"], len(case["clip"]), "the clip_grad_norm results")
    for got, one in zip(outputs["clip"], case["clip"]):
        expect_clip_run(got, clip_run(ref.clip_grad_norm, one), one)
    expect_list(outputs["schedule"], len(case["schedule"]), "the lr_at_step results")
    for got, args in zip(outputs["schedule"], case["schedule"]):
        expected = ref.lr_at_step(**args)
        where = (
            "during warm-up"
            if args["step"] < args["warmup_steps"]
            else "at or after total_steps"
            if args["step"] >= args["total_steps"]
            else "during the cosine decay"
        )
        expect(isinstance(got, float), f"lr_at_step returned a {type(got).__name__}; expected a Python float")
        if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-15):
            fail(
                f"lr_at_step {where} (step {args['step']} of warmup_steps={args['warmup_steps']}, "
                f"total_steps={args['total_steps']}) is {got:.6g}; expected {expected:.6g}"
            )
