"""Public checks of chapter 11: a stable softmax, optimizers as torch.optim.Optimizer subclasses,
weight-decay groups, clipping, the learning-rate schedule and Muon.

The numerics are compared with the recorded outputs of the reference, which the course's tests
prove equal to PyTorch's own functions; the optimizers run a tiny float64 network for 25
steps and must reproduce the reference's parameters (equal to torch.optim's, again by the tests)
after the first step, the second, the tenth and the last. Muon's orthogonalization is also
checked by properties any correct iteration has: singular values near 1, G's singular vectors,
closeness to the SVD's polar factor.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from autograder.compare import expect, expect_close, expect_list, expect_number, expect_tensor, fail
from autograder.forbidden import SOFTMAX_FAMILY
from autograder.split import split

numerics = pytest.mark.ch11_stable_softmax(
    pytest.mark.forbid(
        *SOFTMAX_FAMILY,
        "torch.nn.functional.cross_entropy",
        "torch.nn.functional.nll_loss",
    )
)
_NO_TORCH_OPTIMIZERS = (
    "torch.optim.SGD",
    "torch.optim.Adam",
    "torch.optim.AdamW",
    "torch.optim.Muon",
    "torch.optim.sgd.sgd",
    "torch.optim.adam.adam",
    "torch.optim.adamw.adamw",
    "torch.optim._functional.sgd",
    "torch.optim._functional.adam",
    "torch.optim._functional.adamw",
)
sgd = pytest.mark.ch11_sgd(pytest.mark.forbid(*_NO_TORCH_OPTIMIZERS))
adam = pytest.mark.ch11_adam(pytest.mark.forbid(*_NO_TORCH_OPTIMIZERS))
weight_decay_groups = pytest.mark.ch11_weight_decay_groups
clip_and_schedule = pytest.mark.ch11_clip_and_schedule(
    pytest.mark.forbid(
        "torch.nn.utils.clip_grad_norm_",
        "torch.nn.utils.clip_grad_norm",
        "torch.nn.utils.clip_grad.clip_grad_norm_",
        "torch.nn.utils.clip_grad.clip_grad_norm",
        "torch.nn.utils.get_total_norm",
        "torch.nn.utils.clip_grads_with_norm_",
    )
)
muon = pytest.mark.ch11_muon(pytest.mark.forbid(*_NO_TORCH_OPTIMIZERS))

# float32 softmax/log-sum-exp written another way (exp of a shifted row, a division or a log of a
# sum in another order) agree to a few units in the last place; 1e-6 absolute leaves room for that.
SOFTMAX_ATOL = 1e-6
# The optimizers run in float64: the same arithmetic in another order differs by ~1e-15 per step,
# far below this, while every mistake in an update rule moves some parameter by more.
OPTIMIZER_ATOL = 1e-5

# ---------------------------------------------------------------- ch11.stable_softmax


def _softmax_outputs(sub, recorded):
    return [sub.stable_softmax(case["x"].clone(), dim=case["dim"]) for case in recorded["softmax"]]


@numerics
@split(produce=_softmax_outputs)
def test_stable_softmax_matches_recorded(outputs, recorded):
    """stable_softmax along every dim, on shifted, scaled and masked inputs: PyTorch's values, no nan"""
    cases = recorded["softmax"]
    expect_list(outputs, len(cases), "the stable_softmax results")
    for got, case in zip(outputs, cases):
        what = f"stable_softmax(x, dim={case['dim']}) on {case['what']}"
        expect_tensor(got, what, shape=tuple(case["x"].shape), dtype=case["x"].dtype)
        if not bool(torch.isfinite(got).all()):
            fail(
                f"{what} gives nan or inf: exp overflows above ~88 in float32; "
                "subtract the maximum along dim before exp"
            )
        expect_close(got, case["softmax"], what, atol=SOFTMAX_ATOL)


def _logsumexp_outputs(sub, recorded):
    return [sub.logsumexp(case["x"].clone(), dim=case["dim"]) for case in recorded["softmax"]]


@numerics
@split(produce=_logsumexp_outputs)
def test_logsumexp_matches_recorded(outputs, recorded):
    """logsumexp removes dim and stays finite for huge and very negative inputs"""
    cases = recorded["softmax"]
    expect_list(outputs, len(cases), "the logsumexp results")
    for got, case in zip(outputs, cases):
        what = f"logsumexp(x, dim={case['dim']}) on {case['what']}"
        expected = case["logsumexp"]
        if isinstance(got, torch.Tensor) and got.dim() == expected.dim() + 1:
            fail(f"{what} has shape {tuple(got.shape)}: remove dim from the result, as torch.logsumexp does")
        expect_tensor(got, what, shape=tuple(expected.shape))
        if not bool(torch.isfinite(got).all()):
            fail(f"{what} gives inf or nan: compute m + log(sum(exp(x - m))) with m the maximum along dim")
        expect_close(got, expected, what, atol=1e-4, rtol=1e-6)


def _all_masked(sub):
    x = torch.tensor([[0.5, -1.0, 2.0], [-math.inf, -math.inf, -math.inf]])
    return {"logsumexp": sub.logsumexp(x, dim=-1), "softmax": sub.stable_softmax(x[:1], dim=-1)}


@numerics
@split(produce=_all_masked)
def test_logsumexp_of_an_all_masked_row_is_minus_inf(outputs):
    """a row of -inf only: logsumexp gives -inf, not nan"""
    got = outputs["logsumexp"]
    expect_tensor(got, "logsumexp of a (2, 3) input", shape=(2,))
    expect(
        not bool(torch.isnan(got[1])),
        "logsumexp of a row that is entirely -inf gives nan (-inf - -inf); it should be -inf: "
        "treat an infinite maximum as 0 before subtracting it",
    )
    expect(got[1].item() == -math.inf, f"logsumexp of a row that is entirely -inf gives {got[1].item()}; expected -inf")
    expect(bool(torch.isfinite(got[0])), "logsumexp of an ordinary row is not finite")


def cross_entropy_runs(cross_entropy_from_logits, cases: list[dict]) -> list[dict]:
    """Produce: the loss and the logits' gradient for each case's "logits" and "targets"."""
    results = []
    for case in cases:
        logits = case["logits"].clone().requires_grad_(True)
        loss = cross_entropy_from_logits(logits, case["targets"].clone())
        expect_tensor(loss, "cross_entropy_from_logits(logits, targets)")
        expect(
            loss.requires_grad, "cross_entropy_from_logits is cut off from the graph: no gradient reaches the logits"
        )
        loss.backward()
        results.append({"loss": loss, "grad": logits.grad})
    return results


def _cross_entropy_outputs(sub, recorded):
    return cross_entropy_runs(sub.cross_entropy_from_logits, recorded["cross_entropy"])


@numerics
@split(produce=_cross_entropy_outputs)
def test_cross_entropy_matches_recorded(outputs, recorded):
    """the mean cross-entropy of (N, C) and (batch, tokens, C) logits, also scaled by 1000, and its gradient"""
    cases = recorded["cross_entropy"]
    expect_list(outputs, len(cases), "the cross_entropy_from_logits results")
    for got, case in zip(outputs, cases):
        what = f"cross_entropy_from_logits on {case['what']}"
        loss = got["loss"]
        expect_tensor(loss, what, shape=())
        if not bool(torch.isfinite(loss)):
            fail(f"{what} is {loss.item()}: use logsumexp(logits) - logits[target], not the log of a softmax")
        expect_close(loss, case["loss"], what, atol=1e-4, rtol=1e-6)
        expect_tensor(got["grad"], f"the gradient of {what}", shape=tuple(case["logits"].shape))
        expect_close(got["grad"], case["grad"], f"the gradient of {what} with respect to the logits", atol=1e-6)


# ---------------------------------------------------------------- the optimizers' test bench

PARAMETER_NAMES = ("w1", "b1", "w2", "gain", "w3", "b3", "unused")
# b1 loses its gradient on some steps (as a parameter a step's loss does not use); unused never has one.
CHECKED_FIRST = ("w1", "w2", "gain", "w3", "b3")


def tiny_network(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A tiny float64 network's initial parameters: a tall, a square and a wide matrix, two biases, a
    gain and a matrix that never gets a gradient."""

    def draw(*shape, scale=0.5):
        return scale * torch.randn(*shape, generator=generator, dtype=torch.float64)

    return {
        "w1": draw(6, 4),
        "b1": draw(6, scale=0.1),
        "w2": draw(6, 6),
        "gain": 1 + draw(6, scale=0.1),
        "w3": draw(3, 6),
        "b3": draw(3, scale=0.1),
        "unused": draw(4, 4),
    }


def tiny_data(generator: torch.Generator, batches: int = 4) -> dict[str, torch.Tensor]:
    return {
        "x": torch.randn(batches, 8, 4, generator=generator, dtype=torch.float64),
        "y": torch.randint(0, 3, (batches, 8), generator=generator),
    }


def tiny_loss(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = torch.tanh(x @ params["w1"].T + params["b1"])  # (8, 6)
    h = torch.tanh(h @ params["w2"].T) * params["gain"]  # (8, 6)
    return F.cross_entropy(h @ params["w3"].T + params["b3"], y)


def optimizer_run(namespace, case: dict) -> dict:
    """Produce: train the tiny network with `namespace`'s optimizer class for the case's steps;
    the parameters (by name) after each of the case's snapshot steps."""
    params = {name: nn.Parameter(case["init"][name].clone()) for name in PARAMETER_NAMES}
    if case["groups"] is None:
        argument = [params[name] for name in PARAMETER_NAMES]
    else:
        argument = [{**group["options"], "params": [params[n] for n in group["names"]]} for group in case["groups"]]
    optimizer = getattr(namespace, case["optimizer"])(argument, **case["kwargs"])
    expect(
        isinstance(optimizer, torch.optim.Optimizer),
        f"{case['what']} is a {type(optimizer).__name__}, not a torch.optim.Optimizer",
    )
    data, snapshots = case["data"], []
    for step in range(1, case["steps"] + 1):
        optimizer.zero_grad(set_to_none=True)
        batch = step % data["x"].shape[0]
        tiny_loss(params, data["x"][batch], data["y"][batch]).backward()
        if case["drop_every"] and step % case["drop_every"] == 1:
            params["b1"].grad = None
        optimizer.step()
        if step in case["snapshots"]:
            snapshots.append({name: params[name].detach().clone() for name in PARAMETER_NAMES})
    return {"snapshots": snapshots}


def optimizer_case(name: str, kwargs: dict, init: dict, data: dict, *, steps: int, groups=None, drop_every=0):
    """A case of `optimizer_run`: the class's name, its keyword arguments, optional groups
    ([{"names": [...], "options": {...}}]), and whether b1 loses its gradient every `drop_every` steps."""
    arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    what = f"{name}({'groups, ' if groups else ''}{arguments})"
    return {
        "optimizer": name,
        "what": what,
        "kwargs": kwargs,
        "groups": groups,
        "drop_every": drop_every,
        "init": init,
        "data": data,
        "steps": steps,
        "snapshots": sorted({1, 2, min(10, steps), steps}),
    }


def _parameter_advice(name: str, case: dict) -> str:
    if name == "unused":
        return (
            " (this parameter never has a gradient: skip parameters whose .grad is None entirely, "
            "no weight decay and no state either)"
        )
    if name == "b1" and case["drop_every"]:
        return (
            f" (b1 has no gradient on every {case['drop_every']}rd step, where it must be skipped: no decay, "
            "no momentum or moment update, and its own step count does not advance)"
        )
    if case["groups"]:
        return " (each group's own hyperparameters apply to its parameters: read them from the group inside step)"
    return ""


def expect_same_run(got: dict, expected: dict, case: dict, atol: float = OPTIMIZER_ATOL) -> None:
    """Compare: the snapshots of `optimizer_run` agree with the expected ones, parameter by parameter,
    the parameters that always have a gradient first."""
    expect(isinstance(got, dict) and "snapshots" in got, f"{case['what']}: no parameters came back")
    expect_list(got["snapshots"], len(case["snapshots"]), f"the snapshots of {case['what']}")
    for name in (*CHECKED_FIRST, "b1", "unused"):
        for step, mine, theirs in zip(case["snapshots"], got["snapshots"], expected["snapshots"]):
            expect(isinstance(mine, dict) and name in mine, f"{case['what']}: parameter {name} is missing")
            expect_tensor(mine[name], f"{case['what']}: parameter {name}", shape=tuple(theirs[name].shape))
            if not torch.allclose(mine[name].double(), theirs[name], atol=atol, rtol=0.0):
                label = f"{case['what']}: parameter {name} after {step} step{'s' if step > 1 else ''}"
                try:
                    expect_close(mine[name], theirs[name], label, atol=atol, rtol=0.0)
                except AssertionError as failure:
                    fail(f"{failure}{_parameter_advice(name, case)}")


def optimizer_api(namespace, name: str, kwargs: dict) -> dict:
    """Produce: how `namespace`'s optimizer class is built and what step(closure) returns."""
    cls = getattr(namespace, name)
    builtin = [
        base.__name__
        for base in getattr(cls, "__mro__", ())
        if base.__module__.startswith("torch.optim") and base is not torch.optim.Optimizer and base is not object
    ]
    first = nn.Parameter(torch.ones(3, 2, dtype=torch.float64))
    second = nn.Parameter(torch.ones(3, dtype=torch.float64))
    optimizer = cls([{"params": [first]}, {"params": [second], "lr": 0.125}], **kwargs)
    calls = []

    def closure():
        calls.append(1)
        optimizer.zero_grad()
        loss = (first**2).sum() + (second**3).sum()
        loss.backward()
        return loss

    returned = optimizer.step(closure)
    return {
        "is_optimizer": isinstance(optimizer, torch.optim.Optimizer),
        "builtin_bases": builtin,
        "group_lrs": [group.get("lr") for group in optimizer.param_groups],
        "closure_calls": len(calls),
        "returned": returned if isinstance(returned, (torch.Tensor, float, int)) else repr(type(returned).__name__),
        "moved": [
            not torch.equal(first.detach(), torch.ones(3, 2, dtype=torch.float64)),
            not torch.equal(second.detach(), torch.ones(3, dtype=torch.float64)),
        ],
    }


def expect_optimizer_api(outputs: dict, name: str, lr: float) -> None:
    expect(outputs["is_optimizer"] is True, f"{name} should be a subclass of torch.optim.Optimizer")
    expect(
        not outputs["builtin_bases"],
        f"{name} derives from torch.optim.{(outputs['builtin_bases'] or ['?'])[0]}: write it from torch.optim.Optimizer",
    )
    expect(
        outputs["group_lrs"] == [lr, 0.125],
        f"{name}'s param_groups hold lr {outputs['group_lrs']} for a group without its own lr and one with lr=0.125; "
        f"expected [{lr}, 0.125]: pass the defaults dict to torch.optim.Optimizer.__init__",
    )
    expect(
        outputs["closure_calls"] == 1,
        f"{name}.step(closure) called the closure {outputs['closure_calls']} times; expected once",
    )
    returned = outputs["returned"]
    expect(
        isinstance(returned, (torch.Tensor, float, int)),
        f"{name}.step(closure) returned {returned}; it should return the closure's loss",
    )
    expect(
        abs(expect_number(returned, f"{name}.step(closure)") - 9.0) < 1e-9,
        f"{name}.step(closure) should return the closure's loss",
    )
    expect(outputs["moved"] == [True, True], f"{name}.step(closure) did not update every parameter with a gradient")


# ---------------------------------------------------------------- ch11.sgd


def _sgd_api(sub):
    return optimizer_api(sub, "SGD", {"lr": 0.5, "momentum": 0.9})


@sgd
@split(produce=_sgd_api)
def test_sgd_is_a_torch_optimizer(outputs):
    """SGD subclasses torch.optim.Optimizer, keeps hyperparameters in param_groups, returns the closure's loss"""
    expect_optimizer_api(outputs, "SGD", 0.5)


def _sgd_runs(sub, recorded):
    return [optimizer_run(sub, case) for case in recorded["sgd"]]


@sgd
@split(produce=_sgd_runs)
def test_sgd_matches_recorded_runs(outputs, recorded):
    """SGD with momentum 0 and 0.9, Nesterov, weight decay, two groups and missing gradients: torch.optim.SGD's steps"""
    expect_list(outputs, len(recorded["sgd"]), "the SGD runs")
    for got, case, expected in zip(outputs, recorded["sgd"], recorded["sgd_expected"]):
        expect_same_run(got, expected, case)


# ---------------------------------------------------------------- ch11.adam


def _adam_api(sub):
    return [optimizer_api(sub, name, {"lr": 0.01}) for name in ("Adam", "AdamW")]


@adam
@split(produce=_adam_api)
def test_adam_and_adamw_are_torch_optimizers(outputs):
    """Adam and AdamW subclass torch.optim.Optimizer, keep hyperparameters in param_groups, return the closure's loss"""
    expect_list(outputs, 2, "the Adam and AdamW results")
    for got, name in zip(outputs, ("Adam", "AdamW")):
        expect_optimizer_api(got, name, 0.01)


def _adam_runs(sub, recorded):
    return [optimizer_run(sub, case) for case in recorded["adam"]]


@adam
@split(produce=_adam_runs)
def test_adam_and_adamw_match_recorded_runs(outputs, recorded):
    """Adam and AdamW with and without weight decay, other betas, a large eps, two groups, missing gradients"""
    expect_list(outputs, len(recorded["adam"]), "the Adam and AdamW runs")
    for got, case, expected in zip(outputs, recorded["adam"], recorded["adam_expected"]):
        expect_same_run(got, expected, case)


# ---------------------------------------------------------------- ch11.weight_decay_groups


class Ch04LayerNorm(nn.Module):
    """Chapter 4's LayerNorm: 1-D scale and shift."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale, self.shift = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        return (
            self.scale * (x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, unbiased=False) + 1e-5).sqrt()
            + self.shift
        )


EMBEDDING_TABLES = ("tok_emb.weight", "pos_emb.weight", "segments.weight")


class GroupsModel(nn.Module):
    """Every kind of parameter the rule sorts: embeddings (one tied to the head), linear weights with and
    without bias, LayerNorm, RMSNorm, chapter 4's LayerNorm, a convolution, a scalar, frozen ones."""

    def __init__(self, spec: dict):
        super().__init__()
        dim, vocab = spec["dim"], spec["vocab"]
        self.tok_emb = nn.Embedding(vocab, dim)
        self.pos_emb = nn.Embedding(spec["context"], dim)
        self.segments = nn.Embedding(3, dim)  # an embedding table whose name says nothing
        self.emb_proj = nn.Linear(dim, dim, bias=False)  # a weight matrix whose name says "emb"
        layers = []
        for i in range(spec["layers"]):
            layers += [nn.Linear(dim, dim, bias=i % 2 == 0), nn.LayerNorm(dim, bias=i % 2 == 1), nn.RMSNorm(dim)]
        self.blocks = nn.Sequential(*layers)
        self.norm = Ch04LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel_size=3)
        self.temperature = nn.Parameter(torch.tensor(1.0))
        self.frozen = nn.Linear(dim, dim)
        for param in self.frozen.parameters():
            param.requires_grad = False
        self.blocks[0].bias.requires_grad = False
        self.out_head = nn.Linear(dim, vocab, bias=False)
        if spec["tied"]:
            self.out_head.weight = self.tok_emb.weight


def group_names(groups, model: nn.Module) -> dict:
    """Produce: the returned groups as data, each parameter by its name in the model."""
    names = {id(param): name for name, param in model.named_parameters(remove_duplicate=False)}
    names.update({id(param): name for name, param in model.named_parameters()})
    expect(isinstance(groups, list), f"param_groups_for_weight_decay returned a {type(groups).__name__}, not a list")
    described = []
    for group in groups:
        expect(isinstance(group, dict), f"a group is a {type(group).__name__}, not a dict")
        params = group.get("params")
        expect(isinstance(params, list), f"a group's 'params' is a {type(params).__name__}, not a list")
        described.append(
            {
                "keys": sorted(str(key) for key in group),
                "weight_decay": group.get("weight_decay"),
                "params": [names.get(id(p), "<not a parameter of the model>") for p in params],
            }
        )
    return {"groups": described}


def expect_groups(outputs: dict, expected: list, weight_decay: float, what: str) -> None:
    """Compare `group_names` outputs with the expected [decay names, no-decay names]."""
    groups = outputs["groups"]
    expect(len(groups) == 2, f"{what}: {len(groups)} groups; expected two, decay first")
    for label, group, value in zip(("first (decay)", "second (no decay)"), groups, (weight_decay, 0.0)):
        expect(
            group["keys"] == ["params", "weight_decay"],
            f"{what}: the {label} group has keys {group['keys']}; expected params and weight_decay",
        )
        expect(
            isinstance(group["weight_decay"], (int, float)) and abs(group["weight_decay"] - value) < 1e-12,
            f"{what}: the {label} group has weight_decay {group['weight_decay']}; expected {value}",
        )
    decay, no_decay = groups[0]["params"], groups[1]["params"]
    for name in decay:
        if name not in expected[0]:
            why = _why_no_decay(name, expected)
            fail(f"{what}: {name} is in the decay group; {why}")
    for name in no_decay:
        if name not in expected[1]:
            why = (
                "it is frozen (requires_grad=False): leave it out"
                if name not in expected[0]
                else "it is a weight matrix and should decay"
            )
            fail(f"{what}: {name} is in the no-decay group; {why}")
    for index, names in enumerate(expected):
        got = groups[index]["params"]
        missing = [name for name in names if name not in got]
        expect(not missing, f"{what}: {missing[:1]} missing from the {'decay' if index == 0 else 'no-decay'} group")
        expect(
            len(got) == len(set(got)),
            f"{what}: a parameter appears twice in one group (a tied parameter is listed once)",
        )
        expect(
            got == names,
            f"{what}: the {'decay' if index == 0 else 'no-decay'} group is not in model.named_parameters() order",
        )


def _why_no_decay(name: str, expected: list) -> str:
    if name not in expected[1]:
        return "it is frozen (requires_grad=False): leave it out of both groups"
    if name in EMBEDDING_TABLES:
        return "it is an embedding table (the weight of an nn.Embedding, tied or not): no decay"
    return "it has fewer than two dimensions (a bias, a norm weight or a scalar): no decay"


def _groups_outputs(sub, recorded):
    results = []
    for case in recorded["groups"]:
        torch.manual_seed(0)
        model = GroupsModel(case["spec"])
        results.append(group_names(sub.param_groups_for_weight_decay(model, case["weight_decay"]), model))
    return results


@weight_decay_groups
@split(produce=_groups_outputs)
def test_weight_decay_groups_follow_the_rule(outputs, recorded):
    """matrices decay; biases, norms, scalars and embeddings (tied too) do not; frozen parameters are left out"""
    expect_list(outputs, len(recorded["groups"]), "the groups")
    for got, case in zip(outputs, recorded["groups"]):
        what = f"param_groups_for_weight_decay on a model with{'' if case['spec']['tied'] else 'out'} a tied head"
        expect_groups(got, case["expected"], case["weight_decay"], what)


def _groups_in_adamw(sub):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    groups = sub.param_groups_for_weight_decay(model, 0.5)
    optimizer = torch.optim.AdamW(groups, lr=0.1)
    return [group["weight_decay"] for group in optimizer.param_groups]


@weight_decay_groups
@split(produce=_groups_in_adamw)
def test_weight_decay_groups_go_into_an_optimizer(outputs):
    """the groups can be handed to torch.optim.AdamW as they are"""
    expect(outputs == [0.5, 0.0], f"AdamW built from the groups has weight decays {outputs}; expected [0.5, 0.0]")


# ---------------------------------------------------------------- ch11.clip_and_schedule


def clip_setup(case: dict) -> list:
    """The case's parameters (a frozen one without a gradient among them) with their gradients set."""
    params = []
    for tensor, grad in zip(case["params"], case["grads"]):
        param = nn.Parameter(tensor.clone(), requires_grad=grad is not None)
        if grad is not None:
            param.grad = grad.clone()
        params.append(param)
    return params


def clip_run(clip_grad_norm, case: dict) -> dict:
    """Produce: clip_grad_norm on the case's parameters, passed as the case says; the norm and the gradients."""
    params = clip_setup(case)
    argument = {"list": params, "generator": (p for p in params), "tensor": params[0]}[case["as"]]
    total = clip_grad_norm(argument, case["max_norm"])
    return {"total": total, "grads": [p.grad for p in params]}


def expect_clip_run(got: dict, expected: dict, case: dict) -> None:
    what = f"clip_grad_norm({case['what']}, max_norm={case['max_norm']})"
    total = got["total"]
    expect_tensor(total, f"the norm {what} returns", shape=())
    expect_close(total, expected["total"], f"the total norm {what} returns", atol=1e-9, rtol=1e-6)
    for index, (mine, theirs) in enumerate(zip(got["grads"], expected["grads"])):
        if theirs is None:
            expect(mine is None, f"{what} gave a gradient to a parameter that had none")
            continue
        expect_tensor(mine, f"{what}: gradient {index}", shape=tuple(theirs.shape))
        # Relative to the gradients' size: a case clips tiny gradients, where torch's 1e-6 in the
        # coefficient's denominator shows.
        scale = theirs.abs().max().item()
        expect_close(mine, theirs, f"{what}: gradient {index} after clipping", atol=1e-5 * scale, rtol=1e-5)


def _clip_outputs(sub, recorded):
    return [clip_run(sub.clip_grad_norm, case) for case in recorded["clip"]]


@clip_and_schedule
@split(produce=_clip_outputs)
def test_clip_grad_norm_matches_recorded(outputs, recorded):
    """norms above and below max_norm, a frozen parameter, a generator and a single tensor: clip_grad_norm_'s results"""
    expect_list(outputs, len(recorded["clip"]), "the clip_grad_norm results")
    for got, case, expected in zip(outputs, recorded["clip"], recorded["clip_expected"]):
        expect_clip_run(got, expected, case)


def _clip_without_gradients(sub):
    param = nn.Parameter(torch.ones(3))
    return sub.clip_grad_norm([param], 1.0)


@clip_and_schedule
@split(produce=_clip_without_gradients)
def test_clip_grad_norm_without_gradients_returns_zero(outputs):
    """no parameter has a gradient: the total norm is tensor(0.)"""
    expect_tensor(outputs, "clip_grad_norm of parameters without gradients", shape=())
    expect(
        outputs.item() == 0.0, f"clip_grad_norm of parameters without gradients returned {outputs.item()}; expected 0"
    )


def _schedule_outputs(sub, recorded):
    return [sub.lr_at_step(**case["args"]) for case in recorded["schedule"]]


@clip_and_schedule
@split(produce=_schedule_outputs)
def test_lr_at_step_matches_recorded(outputs, recorded):
    """warm-up from step 0, the peak at warmup_steps, cosine decay, min_lr at and after total_steps, no warm-up"""
    expect_list(outputs, len(recorded["schedule"]), "the lr_at_step results")
    for got, case in zip(outputs, recorded["schedule"]):
        args = case["args"]
        call = ", ".join(f"{k}={v}" for k, v in args.items())
        expect(
            isinstance(got, float) and not isinstance(got, bool),
            f"lr_at_step({call}) returned a {type(got).__name__}; expected a Python float",
        )
        expect(
            math.isclose(got, case["lr"], rel_tol=1e-9, abs_tol=1e-15),
            f"lr_at_step({call}) ({case['what']}) is {got:.6g}; expected {case['lr']:.6g}",
        )


# ---------------------------------------------------------------- ch11.muon


def _newton_schulz_outputs(sub, recorded):
    return [
        sub.zeropower_via_newtonschulz5(case["G"].clone(), steps=case["steps"]) for case in recorded["newton_schulz"]
    ]


@muon
@split(produce=_newton_schulz_outputs)
def test_newton_schulz_matches_recorded(outputs, recorded):
    """tall, wide and square matrices in float32 and float64, 5 and 2 steps: the quintic iteration's result"""
    cases = recorded["newton_schulz"]
    expect_list(outputs, len(cases), "the zeropower_via_newtonschulz5 results")
    for got, case in zip(outputs, cases):
        G = case["G"]
        what = f"zeropower_via_newtonschulz5 of a {G.shape[0]}x{G.shape[1]} {str(G.dtype)[6:]} matrix, steps={case['steps']}"
        expect_tensor(got, what, shape=tuple(G.shape), dtype=G.dtype)
        expect_close(got, case["out"], what, atol=1e-4 if G.dtype == torch.float32 else 1e-8, rtol=0.0)


SINGULAR_VALUE_RANGE = (0.6, 1.25)
POLAR_DISTANCE = 0.35


def well_conditioned(shape: tuple[int, int], generator: torch.Generator) -> dict:
    """G = U diag(s) V^T with s in [0.15, 3] (condition number at most 20) and its factors."""
    m, n = shape
    k = min(m, n)
    U, _ = torch.linalg.qr(torch.randn(m, k, generator=generator, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, k, generator=generator, dtype=torch.float64))
    s = 0.15 + 2.85 * torch.rand(k, generator=generator, dtype=torch.float64)
    s[0], s[-1] = 3.0, 0.15
    return {"G": ((U * s) @ V.T).float(), "U": U.float(), "V": V.float()}


def _properties_outputs(sub, recorded):
    return [sub.zeropower_via_newtonschulz5(case["G"].clone()) for case in recorded["orthogonal"]]


def expect_orthogonalized(got, case: dict) -> None:
    """Compare: the iteration's result on a well-conditioned G has singular values near 1, G's singular
    vectors, and lies near the polar factor U V^T (without being it)."""
    G, U, V = case["G"], case["U"], case["V"]
    what = f"zeropower_via_newtonschulz5 of a {G.shape[0]}x{G.shape[1]} matrix with condition number 20"
    expect_tensor(got, what, shape=tuple(G.shape))
    expect(bool(torch.isfinite(got).all()), f"{what} has nan or inf entries")
    singular = torch.linalg.svdvals(got.double())
    low, high = SINGULAR_VALUE_RANGE
    if singular.max() > high or singular.min() < low:
        fail(
            f"{what} has singular values from {singular.min().item():.3g} to {singular.max().item():.3g}; "
            f"five quintic Newton-Schulz steps after dividing by the Frobenius norm put them within [{low}, {high}]"
        )
    inner = U.double().T @ got.double() @ V.double()
    off_diagonal = (inner - torch.diag(torch.diagonal(inner))).abs().max().item()
    expect(
        off_diagonal < 1e-4,
        f"{what} does not keep G's singular vectors (U^T O V is off-diagonal by {off_diagonal:.3g})",
    )
    polar = U.double() @ V.double().T
    distance = ((got.double() - polar).norm() / polar.norm()).item()
    expect(
        distance <= POLAR_DISTANCE,
        f"{what} is {distance:.3g} from the polar factor U V^T in relative Frobenius norm; expected at most {POLAR_DISTANCE}",
    )
    expect(
        distance > 1e-3,
        f"{what} is the polar factor U V^T itself: write the Newton-Schulz iteration (its singular values are not exactly 1), not an SVD",
    )


@muon
@split(produce=_properties_outputs)
def test_newton_schulz_orthogonalizes(outputs, recorded):
    """singular values within [0.6, 1.25], G's singular vectors, within 0.35 of U V^T: for tall, wide and square G"""
    expect_list(outputs, len(recorded["orthogonal"]), "the zeropower_via_newtonschulz5 results")
    for got, case in zip(outputs, recorded["orthogonal"]):
        expect_orthogonalized(got, case)


def _muon_api(sub):
    return optimizer_api(sub, "Muon", {"lr": 0.02})


@muon
@split(produce=_muon_api)
def test_muon_is_a_torch_optimizer(outputs):
    """Muon subclasses torch.optim.Optimizer, keeps hyperparameters in param_groups, returns the closure's loss"""
    expect_optimizer_api(outputs, "Muon", 0.02)


def _muon_runs(sub, recorded):
    return [optimizer_run(sub, case) for case in recorded["muon"]]


@muon
@split(produce=_muon_runs)
def test_muon_matches_recorded_runs(outputs, recorded):
    """Muon with and without Nesterov and weight decay, other AdamW settings, ns_steps, two groups, missing gradients"""
    expect_list(outputs, len(recorded["muon"]), "the Muon runs")
    for got, case, expected in zip(outputs, recorded["muon"], recorded["muon_expected"]):
        expect_same_run(got, expected, case)
