"""Chapter 11 fixtures: the reference's softmax, log-sum-exp and cross-entropy on awkward inputs, its
optimizers' runs on the tiny network, its clipping and schedule, and its Newton-Schulz iteration."""

from __future__ import annotations

import math

import torch

from autograder.checks.test_ch11 import (
    GroupsModel,
    clip_run,
    optimizer_case,
    optimizer_run,
    tiny_data,
    tiny_network,
    well_conditioned,
)

STEPS = 25
# Groups of the tiny network: w1, b1 and unused in one, the rest in the other.
FIRST, SECOND = ["w1", "b1", "unused"], ["w2", "gain", "w3", "b3"]


def _softmax_cases() -> list[dict]:
    x = torch.randn(4, 7)
    masked = x.clone()
    masked[0, 2], masked[2, :3] = -math.inf, -math.inf
    return [
        {"what": "ordinary logits", "x": x, "dim": -1},
        {"what": "logits shifted by +100", "x": x + 100, "dim": -1},
        {"what": "logits shifted by +1000, along dim 0", "x": x + 1000, "dim": 0},
        {"what": "logits scaled by 1000", "x": x * 1000, "dim": -1},
        {"what": "logits shifted by -1000", "x": x - 1000, "dim": 1},
        {"what": "a (2, 5, 3) batch scaled by 1000, along dim 1", "x": torch.randn(2, 5, 3) * 1000, "dim": 1},
        {"what": "a 1-D vector", "x": torch.randn(9) * 50, "dim": 0},
        {"what": "float64 logits scaled by 1000", "x": torch.randn(3, 5, dtype=torch.float64) * 1000, "dim": -1},
        {"what": "rows with -inf (masked) entries", "x": masked, "dim": -1},
    ]


def _cross_entropy_cases(ref) -> list[dict]:
    cases = [
        {"what": "(6, 5) logits", "logits": torch.randn(6, 5), "targets": torch.randint(0, 5, (6,))},
        {
            "what": "(6, 5) logits scaled by 1000",
            "logits": torch.randn(6, 5) * 1000,
            "targets": torch.randint(0, 5, (6,)),
        },
        {
            "what": "(2, 4, 11) logits + 100",
            "logits": torch.randn(2, 4, 11) + 100,
            "targets": torch.randint(0, 11, (2, 4)),
        },
    ]
    for case in cases:
        logits = case["logits"].clone().requires_grad_(True)
        loss = ref.cross_entropy_from_logits(logits, case["targets"])
        loss.backward()
        case["loss"], case["grad"] = loss.detach(), logits.grad
    return cases


def _optimizer_cases() -> dict[str, list[dict]]:
    generator = torch.Generator().manual_seed(11)
    init, data = tiny_network(generator), tiny_data(generator)

    def case(name, kwargs, groups=None, drop_every=0):
        return optimizer_case(name, kwargs, init, data, steps=STEPS, groups=groups, drop_every=drop_every)

    def groups(first: dict, second: dict):
        return [{"names": FIRST, "options": first}, {"names": SECOND, "options": second}]

    return {
        "sgd": [
            case("SGD", {"lr": 0.1}),
            case("SGD", {"lr": 0.1, "weight_decay": 0.05}),
            case("SGD", {"lr": 0.05, "momentum": 0.9}),
            case("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}, drop_every=3),
            case("SGD", {"lr": 0.1, "momentum": 0.9}, groups({"lr": 0.02, "momentum": 0.5}, {"weight_decay": 0.1}), 3),
        ],
        "adam": [
            case("Adam", {"lr": 0.01}),
            case("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.1}, drop_every=3),
            case("AdamW", {"lr": 0.01}),
            case("AdamW", {"lr": 0.01, "weight_decay": 0.0}),
            case("AdamW", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-3, "weight_decay": 0.5}, drop_every=3),
            case("Adam", {"lr": 0.01}, groups({"lr": 0.003, "weight_decay": 0.1}, {"betas": (0.5, 0.9)}), 3),
            case("AdamW", {"lr": 0.01, "weight_decay": 0.2}, groups({"lr": 0.003}, {"weight_decay": 0.0}), 3),
        ],
        "muon": [
            case("Muon", {}),
            case("Muon", {"lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.1, "adamw_lr": 0.01}),
            case(
                "Muon",
                {"adamw_lr": 0.01, "adamw_betas": (0.8, 0.9), "adamw_eps": 1e-3, "weight_decay": 0.05},
                drop_every=3,
            ),
            case("Muon", {"ns_steps": 3, "adamw_lr": 0.005}),
            case(
                "Muon", {"lr": 0.02}, groups({"lr": 0.005, "adamw_lr": 0.02}, {"weight_decay": 0.1, "momentum": 0.8}), 3
            ),
        ],
    }


def _groups_cases(ref) -> list[dict]:
    cases = []
    for tied, weight_decay in ((False, 0.1), (True, 0.05)):
        spec = {"dim": 4, "vocab": 11, "context": 5, "layers": 3, "tied": tied}
        torch.manual_seed(0)
        model = GroupsModel(spec)
        names = {id(p): n for n, p in model.named_parameters()}
        groups = ref.param_groups_for_weight_decay(model, weight_decay)
        expected = [[names[id(p)] for p in group["params"]] for group in groups]
        cases.append({"spec": spec, "weight_decay": weight_decay, "expected": expected})
    return cases


def _clip_cases() -> list[dict]:
    def grads(*shapes, scale):
        return [torch.randn(*shape) * scale for shape in shapes]

    def case(what, scale, max_norm, as_="list"):
        shapes = [(4, 3), (3,), (2, 2), (5,)]
        params = [torch.randn(*shape) for shape in shapes]
        drawn = grads(*shapes, scale=scale)
        drawn[2] = None  # a frozen parameter
        if as_ == "tensor":
            drawn = [drawn[0], None, None, None]
        return {"what": what, "params": params, "grads": drawn, "max_norm": max_norm, "as": as_}

    return [
        case("gradients with a norm above max_norm and a frozen parameter", 3.0, 1.0),
        case("gradients with a norm below max_norm and a frozen parameter", 0.05, 1.0),
        case("a generator of parameters", 2.0, 0.5, "generator"),
        case("a single tensor", 2.0, 0.25, "tensor"),
        case("tiny gradients clipped to a tiny max_norm", 1e-5, 1e-6),
    ]


SCHEDULE = [
    ("the first warm-up step", {"step": 0, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("the middle of warm-up", {"step": 4, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("the last warm-up step", {"step": 9, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("step == warmup_steps", {"step": 10, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("the cosine decay", {"step": 37, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("halfway through the decay", {"step": 55, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("the last decay step", {"step": 99, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("step == total_steps", {"step": 100, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("after total_steps", {"step": 250, "max_lr": 1e-3, "warmup_steps": 10, "total_steps": 100, "min_lr": 1e-4}),
    ("no warm-up, step 0", {"step": 0, "max_lr": 6e-4, "warmup_steps": 0, "total_steps": 50, "min_lr": 0.0}),
    ("no warm-up, the decay", {"step": 20, "max_lr": 6e-4, "warmup_steps": 0, "total_steps": 50, "min_lr": 0.0}),
]


def record(ref) -> dict:
    torch.manual_seed(1111)
    softmax = _softmax_cases()
    for case in softmax:
        case["softmax"] = ref.stable_softmax(case["x"], dim=case["dim"])
        case["logsumexp"] = ref.logsumexp(case["x"], dim=case["dim"])
    recorded = {"softmax": softmax, "cross_entropy": _cross_entropy_cases(ref)}
    for name, cases in _optimizer_cases().items():
        recorded[name] = cases
        recorded[f"{name}_expected"] = [optimizer_run(ref, case) for case in cases]
    recorded["groups"] = _groups_cases(ref)
    clip = _clip_cases()
    recorded["clip"], recorded["clip_expected"] = clip, [clip_run(ref.clip_grad_norm, case) for case in clip]
    recorded["schedule"] = [{"what": what, "args": args, "lr": ref.lr_at_step(**args)} for what, args in SCHEDULE]
    generator = torch.Generator().manual_seed(5)
    newton_schulz = []
    for dtype in (torch.float32, torch.float64):
        for shape in ((12, 5), (5, 12), (8, 8)):
            newton_schulz.append({"G": torch.randn(*shape, generator=generator, dtype=dtype), "steps": 5})
    newton_schulz.append({"G": torch.randn(7, 3, generator=generator), "steps": 2})
    for case in newton_schulz:
        case["out"] = ref.zeropower_via_newtonschulz5(case["G"], steps=case["steps"])
    recorded["newton_schulz"] = newton_schulz
    recorded["orthogonal"] = [well_conditioned(shape, generator) for shape in ((48, 16), (16, 48), (32, 32), (64, 64))]
    return recorded
