"""Public checks of chapter 14: mixture of experts.

The router, the losses, the capacity mask and the parameter counts are compared with recorded
outputs on recorded inputs; the MoE layer gets the recorded parameters by name and must give the
recorded outputs, logits and gradients, run each expert at most once per forward pass, and equal
chapter 8's dense feed-forward with one expert and top-1. Properties on top: routing weights sum
to 1, the balancing loss is about top_k under even routing and near num_experts under collapse.
"""

from __future__ import annotations

import pytest
import torch

from autograder.checks.modules import expect_gradients_reach, gradient_probe, load_parameters
from autograder.compare import expect, expect_close, expect_list, expect_number, expect_tensor, fail
from autograder.split import split

router = pytest.mark.ch14_router
moe_layer = pytest.mark.ch14_moe_layer
balancing_losses = pytest.mark.ch14_balancing_losses
capacity = pytest.mark.ch14_capacity
parameter_counts = pytest.mark.ch14_parameter_counts

# float32 softmax and matmuls summed in another order (grouped, looped, sorted) differ by ~1e-7.
ATOL = 1e-5


# ---------------------------------------------------------------- ch14.router


def route_of(route, logits: torch.Tensor, top_k: int) -> dict:
    """Produce: route(logits, top_k) as {"weights", "indices"}."""
    result = route(logits.clone(), top_k)
    expect(isinstance(result, (tuple, list)) and len(result) == 2, "route should return (weights, indices)")
    return {"weights": result[0], "indices": result[1]}


def expect_route(outputs: dict, logits: torch.Tensor, top_k: int, weights, indices, what: str) -> None:
    """Compare route's outputs with the expected weights and indices."""
    shape = (*logits.shape[:-1], top_k)
    expect_tensor(outputs["indices"], f"the indices of {what}", shape=shape)
    expect_tensor(outputs["weights"], f"the weights of {what}", shape=shape)
    expect(
        outputs["weights"].dtype == torch.float32,
        f"the weights of {what} have dtype {outputs['weights'].dtype}; compute the softmax in float32",
    )
    expect(
        not outputs["indices"].dtype.is_floating_point,
        f"the indices of {what} have dtype {outputs['indices'].dtype}; expected int64 expert indices",
    )
    # Experts are compared by their probabilities, so that ties (common with bfloat16 logits) may go either way.
    chosen = outputs["indices"].long()
    num_experts = logits.shape[-1]
    expect(
        bool(((chosen >= 0) & (chosen < num_experts)).all()),
        f"{what}: an index lies outside 0..{num_experts - 1}",
    )
    ordered = chosen.sort(dim=-1).values
    expect(
        top_k == 1 or not bool((ordered[..., 1:] == ordered[..., :-1]).any()),
        f"{what}: a token chose the same expert twice",
    )
    probs = torch.softmax(logits.float(), dim=-1)
    got, want = probs.gather(-1, chosen), probs.gather(-1, indices)
    if not torch.equal(got, want):
        if torch.equal(got.sort(dim=-1, descending=True).values, want):
            fail(f"{what}: the right experts, in the wrong order: give them in descending order of probability")
        fail(f"{what}: the chosen experts differ (keep the top_k largest probabilities of each token)")
    sums = outputs["weights"].sum(dim=-1)
    expect(
        bool(torch.allclose(sums, torch.ones_like(sums), atol=1e-5)),
        f"{what}: the weights of a token sum to {sums.flatten()[0].item():.4g}, not 1: "
        "renormalise the kept probabilities over the chosen experts",
    )
    expect_close(outputs["weights"], weights, f"the weights of {what}", atol=ATOL)


def _recorded_routes(sub, recorded):
    return [route_of(sub.route, case["logits"], case["top_k"]) for case in recorded["route"]]


@router
@split(produce=_recorded_routes)
def test_route_matches_recorded(outputs, recorded):
    """route: the recorded experts and renormalised weights (2-D, 3-D, top-1, bfloat16 logits)"""
    expect_list(outputs, len(recorded["route"]), "the route results")
    for case, out in zip(recorded["route"], outputs, strict=True):
        expect_route(out, case["logits"], case["top_k"], case["weights"], case["indices"], case["what"])


# ---------------------------------------------------------------- ch14.moe_layer


def _moe_build(sub, case: dict):
    return load_parameters(sub.MoEFeedForward(dict(case["config"], dtype=None)), case["state"], "MoEFeedForward")


def moe_outputs(sub, case: dict) -> dict:
    """Produce: the layer with the case's parameters on its input; output, router logits, how often each
    expert ran, and the gradients of a random weighting of the output."""
    layer = _moe_build(sub, case)
    calls = [0] * len(layer.experts)
    for e, expert in enumerate(layer.experts):
        expert.register_forward_hook(lambda module, args, out, e=e: calls.__setitem__(e, calls[e] + 1))
    result = layer(case["x"].clone())
    expect(
        isinstance(result, (tuple, list)) and len(result) == 2, "MoEFeedForward should return (output, router_logits)"
    )
    output, logits = result
    return {
        "output": output.detach() if isinstance(output, torch.Tensor) else output,
        "router_logits": logits,
        "calls": calls,
        "grads": gradient_probe(layer, output, "MoEFeedForward"),
    }


def expect_moe(outputs: dict, case: dict, expected: dict, what: str) -> None:
    """Compare the layer's outputs with the expected ones."""
    x = case["x"]
    expect_tensor(outputs["output"], f"the output of {what}", shape=tuple(x.shape))
    expect_tensor(
        outputs["router_logits"],
        f"the router logits of {what}",
        shape=(x.shape[0] * x.shape[1], case["config"]["num_experts"]),
    )
    too_often = [e for e, n in enumerate(outputs["calls"]) if n > 1]
    expect(
        not too_often,
        f"{what}: expert {too_often[0] if too_often else ''} ran {max(outputs['calls'])} times in one forward pass; "
        "group the tokens by expert and run each expert once on all of its tokens",
    )
    expect_close(outputs["router_logits"], expected["router_logits"], f"the router logits of {what}", atol=ATOL)
    expect_close(outputs["output"], expected["output"], f"the output of {what}", atol=ATOL)
    if case["config"]["num_experts_per_tok"] > 1:
        # With top-1 the renormalised weight is always 1, so no gradient reaches the gate from the output.
        expect_gradients_reach(outputs["grads"], ["gate.weight"], "MoEFeedForward")
    for name, value in expected["grads"].items():
        got = outputs["grads"].get(name)
        if not value:  # an expert that no token chose gets no gradient (or zeros)
            expect(
                not got,
                f"{what}: {name} gets a gradient although no token chose its expert: "
                "a token's output comes from its top_k experts only",
            )
            continue
        expect(got is not None, f"no gradient reaches MoEFeedForward.{name}")
        expect(
            abs(got - value) <= 1e-4 * max(1.0, abs(value)),
            f"{what}: the gradient of {name} differs (absolute sum {got:.6g}): "
            "is every chosen expert's output scaled by its routing weight, with the weights kept in the graph?",
        )


def _recorded_moe(sub, recorded):
    return [moe_outputs(sub, case) for case in recorded["moe"]]


@moe_layer
@split(produce=_recorded_moe)
def test_moe_layer_matches_recorded(outputs, recorded):
    """MoEFeedForward: recorded outputs, router logits and gradients; each expert once per pass"""
    expect_list(outputs, len(recorded["moe"]), "the MoEFeedForward results")
    for case, out in zip(recorded["moe"], outputs, strict=True):
        expect_moe(out, case, case["expected"], case["what"])


def _one_expert(sub, recorded):
    case = recorded["one_expert"]
    layer = _moe_build(sub, case)
    with torch.no_grad():
        output = layer(case["x"].clone())
    expect(
        isinstance(output, (tuple, list)) and len(output) == 2, "MoEFeedForward should return (output, router_logits)"
    )
    return output[0]


@moe_layer
@split(produce=_one_expert)
def test_one_expert_top1_is_dense_feedforward(outputs, recorded):
    """with one expert and top-1, MoEFeedForward equals chapter 8's FeedForward"""
    case = recorded["one_expert"]
    expect_tensor(outputs, "the output with one expert", shape=tuple(case["x"].shape))
    expect_close(
        outputs,
        case["dense"],
        "the output with one expert and top-1 (it should equal FeedForward with the expert's weights)",
        atol=ATOL,
    )


# ---------------------------------------------------------------- ch14.balancing_losses


def losses_of(sub, logits: torch.Tensor, top_k: int) -> dict:
    """Produce: both losses on `logits` and their gradients w.r.t. the logits."""
    out = {}
    for name, call in (
        ("balance", lambda x: sub.load_balancing_loss(x, top_k)),
        ("z", sub.router_z_loss),
    ):
        leaf = logits.clone().requires_grad_(True)
        value = call(leaf)
        expect_tensor(value, f"{name} loss")
        expect(value.numel() == 1, f"the {name} loss should be a single number; got shape {tuple(value.shape)}")
        grad = None
        if value.requires_grad:
            value.sum().backward()
            grad = leaf.grad
        out[name] = {"value": value.detach().reshape(()), "grad": grad}
    return out


def expect_losses(outputs: dict, expected: dict, what: str) -> None:
    for name, title in (("balance", "load_balancing_loss"), ("z", "router_z_loss")):
        got = outputs[name]
        expect(
            got["value"].dtype == torch.float32, f"{title} on {what} has dtype {got['value'].dtype}; expected float32"
        )
        expect_close(got["value"], expected[name]["value"], f"{title} on {what}", atol=1e-5)
        expect(got["grad"] is not None, f"{title} on {what} is cut off from the logits: no gradient reaches them")
        expect_close(got["grad"], expected[name]["grad"], f"the gradient of {title} on {what}", atol=1e-6)


def _recorded_losses(sub, recorded):
    return [losses_of(sub, case["logits"], case["top_k"]) for case in recorded["losses"]]


@balancing_losses
@split(produce=_recorded_losses)
def test_losses_match_recorded(outputs, recorded):
    """load_balancing_loss and router_z_loss: recorded values and gradients"""
    expect_list(outputs, len(recorded["losses"]), "the loss results")
    for case, out in zip(recorded["losses"], outputs, strict=True):
        expect_losses(out, case["expected"], case["what"])


def _uniform_and_collapsed(sub):
    gen = torch.Generator().manual_seed(5)
    near_uniform = 1e-4 * torch.randn(2, 512, 8, generator=gen)
    collapsed = near_uniform.clone()
    collapsed[..., 3] += 30.0
    collapsed[..., 6] += 30.0
    return {
        "uniform": [sub.load_balancing_loss(near_uniform, k) for k in (1, 2)],
        "collapsed": sub.load_balancing_loss(collapsed, 2),
    }


@balancing_losses
@split(produce=_uniform_and_collapsed)
def test_balance_loss_uniform_and_collapsed(outputs):
    """the balancing loss is top_k under even routing and num_experts under collapse"""
    for k, value in zip((1, 2), outputs["uniform"], strict=True):
        got = expect_number(value, "the balancing loss")
        expect(
            abs(got - k) < 0.01,
            f"under even routing over 8 experts with top_k={k} the balancing loss is {got:.4g}, not about {k}: "
            "f_e counts all top_k choices divided by the number of tokens, times num_experts",
        )
    got = expect_number(outputs["collapsed"], "the balancing loss")
    expect(
        abs(got - 8) < 0.01,
        f"with every token on the same 2 of 8 experts the balancing loss is {got:.4g}, not about 8 (num_experts)",
    )


# ---------------------------------------------------------------- ch14.capacity


def capacity_of(sub, case: dict) -> dict:
    return {
        "capacity": sub.expert_capacity(*case["capacity_args"]),
        "mask": sub.capacity_mask(case["indices"].clone(), case["num_experts"], case["capacity"]),
    }


def expect_capacity(outputs: dict, case: dict, expected: dict, what: str) -> None:
    got = outputs["capacity"]
    expect(isinstance(got, int), f"expert_capacity{tuple(case['capacity_args'])} should be a Python int")
    expect(
        got == expected["capacity"],
        f"expert_capacity{tuple(case['capacity_args'])} gives {got}; "
        "ceil(capacity_factor * num_tokens * top_k / num_experts) differs",
    )
    mask = outputs["mask"]
    expect_tensor(mask, f"capacity_mask on {what}", shape=tuple(case["indices"].shape))
    expect(mask.dtype == torch.bool, f"capacity_mask on {what} has dtype {mask.dtype}; expected bool")
    kept, want = mask.sum().item(), expected["mask"].sum().item()
    if kept != want:
        fail(f"capacity_mask on {what} keeps {kept} choices; {want} fit (capacity {case['capacity']} per expert)")
    if not torch.equal(mask, expected["mask"]):
        token = int((mask != expected["mask"]).any(dim=-1).nonzero()[0])
        fail(
            f"capacity_mask on {what}: the wrong choices are kept, first at token {token}: "
            "each expert serves the tokens that chose it in order of position"
        )


def _recorded_capacity(sub, recorded):
    return [capacity_of(sub, case) for case in recorded["capacity"]]


@capacity
@split(produce=_recorded_capacity)
def test_capacity_matches_recorded(outputs, recorded):
    """expert_capacity and capacity_mask: recorded capacities and kept choices (top-1 and top-2)"""
    expect_list(outputs, len(recorded["capacity"]), "the capacity results")
    for case, out in zip(recorded["capacity"], outputs, strict=True):
        expect_capacity(out, case, case["expected"], case["what"])


# ---------------------------------------------------------------- ch14.parameter_counts


def parameter_counts_of(sub, configs: list) -> list:
    results = []
    for config in configs:
        result = sub.moe_parameter_counts(dict(config))
        expect(
            isinstance(result, (tuple, list)) and len(result) == 2, "moe_parameter_counts should return (total, active)"
        )
        results.append([int(v) for v in result])
    return results


def expect_counts(outputs: list, configs: list, expected: list, names: list) -> None:
    expect_list(outputs, len(configs), "the counts")
    for (total, active), (want_total, want_active), name in zip(outputs, expected, names, strict=True):
        expect(total == want_total, f"the total count of {name} is {total:,}, {total - want_total:+,} off")
        expect(active == want_active, f"the active count of {name} is {active:,}, {active - want_active:+,} off")


def _recorded_counts(sub, recorded):
    return parameter_counts_of(sub, [case["config"] for case in recorded["counts"]])


@parameter_counts
@split(produce=_recorded_counts)
def test_parameter_counts_match_recorded(outputs, recorded):
    """moe_parameter_counts: Mixtral 8x7B and small configs (tied head, explicit head_dim)"""
    cases = recorded["counts"]
    expect_counts(outputs, [c["config"] for c in cases], [c["expected"] for c in cases], [c["what"] for c in cases])
