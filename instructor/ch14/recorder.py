"""Chapter 14 fixtures: inputs, parameters and the reference's outputs for the public checks."""

from __future__ import annotations

import torch

from autograder.checks.modules import parameter_state

MIXTRAL_8X7B = {
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "tie_word_embeddings": False,
}
# head_dim differs from hidden_size // heads, kv heads fewer than heads, a tied head, top-1 and top-3.
SMALL_CONFIGS = [
    {
        "vocab_size": 101,
        "hidden_size": 24,
        "intermediate_size": 40,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_local_experts": 6,
        "num_experts_per_tok": 3,
        "head_dim": 8,
        "tie_word_embeddings": True,
    },
    {
        "vocab_size": 77,
        "hidden_size": 16,
        "intermediate_size": 36,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 1,
        "num_local_experts": 4,
        "num_experts_per_tok": 1,
    },
]


def route_case(ref, logits, top_k, what):
    weights, indices = ref.route(logits, top_k)
    return {"logits": logits, "top_k": top_k, "weights": weights, "indices": indices, "what": what}


def moe_case(ref, config, x, what):
    torch.manual_seed(11)
    layer = ref.MoEFeedForward(dict(config, dtype=None))
    # Larger gate weights spread the routing weights away from 1/top_k, so unweighted sums show.
    with torch.no_grad():
        layer.gate.weight.mul_(4)
    case = {"config": config, "state": parameter_state(layer), "x": x, "what": what}
    output, logits = layer(x.clone())
    layer.zero_grad(set_to_none=True)
    weighting = torch.randn(output.shape, generator=torch.Generator().manual_seed(7))
    (output * weighting).sum().backward()
    grads = {name: p.grad.abs().sum().item() for name, p in layer.named_parameters() if p.grad is not None}
    case["expected"] = {"output": output.detach(), "router_logits": logits.detach(), "grads": grads}
    return case


def loss_case(ref, logits, top_k, what):
    expected = {}
    for name, call in (("balance", lambda x: ref.load_balancing_loss(x, top_k)), ("z", ref.router_z_loss)):
        leaf = logits.clone().requires_grad_(True)
        value = call(leaf)
        value.backward()
        expected[name] = {"value": value.detach(), "grad": leaf.grad}
    return {"logits": logits, "top_k": top_k, "expected": expected, "what": what}


def capacity_case(ref, indices, num_experts, top_k, factor, what):
    num_tokens = indices.shape[0]
    capacity = ref.expert_capacity(num_tokens, num_experts, top_k, factor)
    return {
        "indices": indices,
        "num_experts": num_experts,
        "capacity": capacity,
        "capacity_args": [num_tokens, num_experts, top_k, factor],
        "expected": {"capacity": capacity, "mask": ref.capacity_mask(indices, num_experts, capacity)},
        "what": what,
    }


def record(ref) -> dict:
    torch.manual_seed(123)
    routes = [
        route_case(ref, torch.randn(7, 5) * 2, 2, "7 tokens over 5 experts, top-2"),
        route_case(ref, torch.randn(2, 4, 8) * 2, 3, "a (2, 4, 8) batch, top-3"),
        route_case(ref, torch.randn(6, 4), 1, "6 tokens over 4 experts, top-1"),
        route_case(ref, (torch.randn(5, 6) * 3).bfloat16(), 2, "bfloat16 logits, top-2"),
    ]
    cfg = {"emb_dim": 12, "hidden_dim": 20, "num_experts": 6, "num_experts_per_tok": 2}
    moes = [
        moe_case(ref, cfg, torch.randn(2, 9, 12), "6 experts, top-2, a (2, 9, 12) input"),
        moe_case(ref, {**cfg, "num_experts": 5, "num_experts_per_tok": 3}, torch.randn(3, 4, 12), "5 experts, top-3"),
        moe_case(
            ref, {**cfg, "num_experts": 8, "num_experts_per_tok": 2}, torch.randn(1, 3, 12), "8 experts, 3 tokens"
        ),
    ]
    one = {"emb_dim": 10, "hidden_dim": 14, "num_experts": 1, "num_experts_per_tok": 1}
    torch.manual_seed(5)
    layer = ref.MoEFeedForward(dict(one, dtype=None))
    dense = ref.FeedForward(dict(one, dtype=None))
    dense.load_state_dict(layer.experts[0].state_dict())
    x = torch.randn(2, 5, 10)
    with torch.no_grad():
        one_expert = {"config": one, "state": parameter_state(layer), "x": x, "dense": dense(x)}
    skewed = torch.randn(64, 6)
    skewed[:, 2] += 2.0
    losses = [
        loss_case(ref, torch.randn(3, 10, 8) * 2, 2, "random (3, 10, 8) logits, top-2"),
        loss_case(ref, torch.randn(40, 4), 1, "40 tokens over 4 experts, top-1"),
        loss_case(ref, skewed, 3, "logits that favour one expert, top-3"),
    ]
    top1 = torch.tensor([0, 0, 1, 0, 2, 0, 3, 0, 1, 0, 2, 2]).unsqueeze(-1)
    top2 = torch.topk(torch.randn(20, 5) + torch.tensor([1.5, 0.0, 0.8, 0.0, 0.0]), 2, dim=-1).indices
    capacities = [
        capacity_case(ref, top1, 4, 1, 1.0, "12 tokens, 4 experts, top-1, factor 1.0"),
        capacity_case(ref, top2, 5, 2, 1.25, "20 tokens, 5 experts, top-2, factor 1.25"),
        capacity_case(ref, top2, 5, 2, 0.6, "20 tokens, 5 experts, top-2, factor 0.6"),
    ]
    counts = [
        {"config": c, "expected": list(ref.moe_parameter_counts(dict(c))), "what": w}
        for c, w in zip(
            [MIXTRAL_8X7B, *SMALL_CONFIGS],
            ["Mixtral 8x7B", "a small config with a tied head and head_dim 8", "a small top-1 config"],
            strict=True,
        )
    ]
    return {
        "route": routes,
        "moe": moes,
        "one_expert": one_expert,
        "losses": losses,
        "capacity": capacities,
        "counts": counts,
    }
