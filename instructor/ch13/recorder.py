"""Chapter 13 fixtures: inputs, and the expected outputs of PyTorch's softmax and scaled_dot_product_attention
(forward and gradients) and of the reference for the sliding window, RoPE scaling and ALiBi."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch13 import build_window_lm, generate_both_ways


def online_case(scores, values, block_size, what):
    weights = torch.softmax(scores.double(), dim=-1)
    expected = {
        "out": (weights[..., None, :] @ values.double()).squeeze(-2).to(scores.dtype),
        "lse": torch.logsumexp(scores.double(), dim=-1).to(scores.dtype),
    }
    return {"scores": scores, "values": values, "block_size": block_size, "what": what, "expected": expected}


def attention_expected(Q, K, V, is_causal, dO=None):
    """SDPA's output (and gradients for dO) in float64, and the log-sum-exp of the scaled, masked scores."""
    Q64, K64, V64 = (t.double().requires_grad_(True) for t in (Q, K, V))
    output = F.scaled_dot_product_attention(Q64, K64, V64, is_causal=is_causal)
    scores = Q64 @ K64.transpose(-2, -1) / math.sqrt(Q.shape[-1])
    if is_causal:
        n_q, n_k = Q.shape[-2], K.shape[-2]
        scores = scores.masked_fill(torch.ones(n_q, n_k, dtype=torch.bool).triu(1), -torch.inf)
    expected = {"O": output.detach().float(), "L": torch.logsumexp(scores, dim=-1).detach().float()}
    if dO is not None:
        grads = torch.autograd.grad(output, (Q64, K64, V64), dO.double())
        expected["grads"] = [g.float() for g in grads]
    return expected


def attention_case(shape_q, n_k, is_causal, q_block, k_block, what, with_grads=False):
    Q = torch.randn(*shape_q)
    K = torch.randn(*shape_q[:-2], n_k, shape_q[-1])
    V = torch.randn(*shape_q[:-2], n_k, shape_q[-1])
    case = {"Q": Q, "K": K, "V": V, "is_causal": is_causal, "q_block": q_block, "k_block": k_block, "what": what}
    if with_grads:
        case["dO"] = torch.randn(shape_q)
    case["expected"] = attention_expected(Q, K, V, is_causal, case.get("dO"))
    return case


def window_case(ref, config, x, chunks, what):
    torch.manual_seed(31)
    c = config
    layer = ref.SlidingWindowAttention(
        c["d_in"], c["d_out"], c["context_length"], 0.0, c["num_heads"], c["window_size"], c.get("qkv_bias", False)
    ).eval()
    with torch.no_grad():
        expected = layer(x)
    return {
        "config": config,
        "state": parameter_state(layer),
        "x": x,
        "chunks": chunks,
        "expected": expected,
        "what": what,
    }


def rope_case(ref, method, args, kwargs=None):
    kwargs = kwargs or {}
    function = {"linear": ref.linear_scaled_inv_freq, "ntk": ref.ntk_scaled_inv_freq, "yarn": ref.yarn_inv_freq}[method]
    result = function(*args, **kwargs)
    if method == "yarn":
        expected = {"inv_freq": result[0], "attention_factor": result[1]}
    else:
        expected = {"inv_freq": result, "attention_factor": None}
    return {"method": method, "args": list(args), "kwargs": kwargs, "expected": expected}


ROPE_CASES = [
    ("linear", (64, 10_000.0, 4.0)),
    ("linear", (128, 500_000.0, 8.0)),
    ("linear", (32, 10_000.0, 2.5)),
    ("ntk", (64, 10_000.0, 4.0)),
    ("ntk", (128, 500_000.0, 8.0)),
    ("ntk", (32, 10_000.0, 2.5)),
    ("yarn", (64, 10_000.0, 4.0, 2048)),
    ("yarn", (128, 500_000.0, 8.0, 8192)),
    ("yarn", (32, 10_000.0, 2.5, 4096), {"beta_fast": 16.0, "beta_slow": 2.0}),
    ("yarn", (64, 10_000.0, 1.0, 2048)),
    ("yarn", (16, 10_000.0, 4.0, 64)),  # the ramp starts at pair 0
    ("yarn", (8, 100.0, 4.0, 32768)),  # the ramp's end is clamped to head_dim - 1
]
SLOPES_FOR = [1, 2, 8, 12, 16, 6, 24]
BIASES_FOR = [(8, 7), (12, 10), (3, 5)]


def record(ref) -> dict:
    torch.manual_seed(123)
    masked = torch.randn(4, 30)
    masked[1, :12] = -torch.inf  # the first two blocks of 5 all masked
    masked[3, torch.randperm(30)[:10]] = -torch.inf
    online = [
        online_case(torch.randn(5, 37), torch.randn(37, 6), 8, "(5, 37) scores, values shared, blocks of 8"),
        online_case(torch.randn(2, 3, 20), torch.randn(2, 3, 20, 4), 16, "(2, 3, 20) scores, blocks of 16"),
        online_case(torch.randn(4, 33) + 1000.0, torch.randn(33, 5), 8, "scores around +1000, blocks of 8"),
        online_case(masked, torch.randn(30, 3), 5, "rows with -inf scores, the first blocks all -inf"),
        online_case(torch.randn(3, 6), torch.randn(6, 2), 16, "6 scores, one block of 16"),
        online_case(torch.randn(2, 7) * 3, torch.randn(7, 3), 1, "blocks of 1 score"),
    ]
    forward = [
        attention_case((2, 2, 21, 12), 21, False, 8, 4, "(2, 2, 21, 12), tiles 8 x 4"),
        attention_case((2, 2, 21, 12), 21, True, 8, 4, "causal (2, 2, 21, 12), tiles 8 x 4"),
        attention_case((1, 2, 19, 12), 19, True, 4, 8, "causal (1, 2, 19, 12), tiles 4 x 8"),
        attention_case((3, 10, 12), 10, True, 16, 16, "causal (3, 10, 12), shorter than a 16 x 16 tile"),
        attention_case((2, 13, 12), 30, False, 8, 8, "13 queries, 30 keys, tiles 8 x 8"),
        attention_case((2, 40, 8), 40, True, None, None, "causal (2, 40, 8), the default block sizes"),
    ]
    backward = [
        attention_case((2, 2, 21, 12), 21, False, 8, 4, "(2, 2, 21, 12), tiles 8 x 4", with_grads=True),
        attention_case((2, 2, 21, 12), 21, True, 8, 4, "causal (2, 2, 21, 12), tiles 8 x 4", with_grads=True),
        attention_case((1, 2, 19, 12), 19, True, 4, 8, "causal (1, 2, 19, 12), tiles 4 x 8", with_grads=True),
        attention_case((2, 13, 12), 30, False, 8, 8, "13 queries, 30 keys, tiles 8 x 8", with_grads=True),
    ]
    function = [
        attention_case((2, 2, 19, 8), 19, True, 8, 4, "causal (2, 2, 19, 8), tiles 8 x 4", with_grads=True),
        attention_case((1, 3, 21, 8), 21, False, 4, 8, "(1, 3, 21, 8), tiles 4 x 8", with_grads=True),
        attention_case((2, 40, 8), 40, False, None, None, "(2, 40, 8), the default block sizes", with_grads=True),
        attention_case((2, 40, 8), 40, True, None, None, "causal (2, 40, 8), the defaults", with_grads=True),
    ]
    masks = [
        {"num_tokens": n, "window_size": w, "mask": ref.sliding_window_mask(n, w)}
        for n, w in ((6, 3), (9, 1), (5, 8), (12, 4))
    ]
    config = {"d_in": 8, "d_out": 12, "context_length": 64, "num_heads": 3, "window_size": 5}
    windows = [
        window_case(ref, config, torch.randn(2, 23, 8), [[0, 7], [7, 8], [8, 11], [11, 12], [12, 23]], "window 5"),
        window_case(
            ref,
            {**config, "window_size": 2, "num_heads": 2, "qkv_bias": True},
            torch.randn(1, 9, 8),
            [[0, 1], [1, 2], [2, 3], [3, 6], [6, 9]],
            "window 2, biases, one token at a time first",
        ),
    ]
    longer = window_case(ref, {**config, "window_size": 32}, torch.randn(2, 10, 8), [[0, 4], [4, 10]], "window 32")
    mha = ref.MultiHeadAttention(8, 12, 64, 0.0, 3)
    mha.load_state_dict(longer["state"], strict=False)
    with torch.no_grad():
        longer["expected"] = mha.eval()(longer["x"])
    longer["what"] = "window 32 > 10 tokens (chapter 3's causal attention)"
    windows.append(longer)
    lm_config = {"d": 16, "vocab_size": 20, "context_length": 40, "num_heads": 2, "window_size": 3, "num_layers": 2}
    torch.manual_seed(7)
    model = build_window_lm(ref.SlidingWindowAttention, lm_config)
    prompt = torch.randint(0, 20, (2, 5))
    generated = generate_both_ways(model, prompt, 14)
    generation = {
        "config": lm_config,
        "state": parameter_state(model),
        "prompt": prompt,
        "steps": 14,
        "expected": generated["uncached"],
    }
    return {
        "online": online,
        "forward": forward,
        "backward": backward,
        "function": function,
        "masks": masks,
        "window": windows,
        "generation": generation,
        "rope": [rope_case(ref, *case) for case in ROPE_CASES],
        "slopes_for": SLOPES_FOR,
        "biases_for": [list(b) for b in BIASES_FOR],
        "slopes": [ref.alibi_slopes(n) for n in SLOPES_FOR],
        "biases": [ref.alibi_bias(h, t) for h, t in BIASES_FOR],
    }
