"""Hidden checks of chapter 13: the live reference against the submission on inputs, lengths, block
sizes and configurations drawn from the seed. Every case class (streamed blocks with a short last one,
scores + 1000, leading -inf blocks; causal and not, either block larger, fewer queries than keys;
cached chunks longer than the window and single tokens; each RoPE method; ALiBi for a power of two
and not) is drawn on every seed; the seed changes values and sizes only."""

from __future__ import annotations

import random

import torch

from autograder.checks.modules import parameter_state
from autograder.checks.test_ch13 import (
    ROPE_FUNCTIONS,
    alibi,
    alibi_of,
    backward_of,
    build_window_lm,
    expect_alibi,
    expect_forward,
    expect_function,
    expect_generation,
    expect_grads,
    expect_masks,
    expect_online,
    expect_rope,
    expect_tiles,
    expect_window,
    flash_backward,
    flash_forward,
    forward_of,
    function_of,
    generate_both_ways,
    masks_of,
    online_of,
    online_softmax,
    rope_of,
    rope_scaling,
    single_threaded,
    sliding_window,
    window_outputs,
)
from autograder.compare import expect_list
from autograder.split import split


def _online_case(seed):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    cases = []
    block = rng.randint(3, 9)
    n = block * rng.randint(2, 5) + rng.randint(1, block - 1)  # a short last block
    cases.append(
        {"scores": torch.randn(rng.randint(2, 6), n, generator=gen) * 2, "block_size": block, "values_shape": [n, 3]}
    )
    n = rng.randint(20, 40)
    cases.append(
        {
            "scores": torch.randn(2, rng.randint(2, 4), n, generator=gen) + 1000.0,
            "block_size": rng.randint(4, 12),
            "values_shape": None,
        }
    )
    block = rng.randint(3, 6)
    masked = torch.randn(3, block * 4 + 1, generator=gen)
    masked[0, : block * rng.randint(1, 2) + 1] = -torch.inf
    masked[2, torch.randperm(masked.shape[1], generator=gen)[: block * 2]] = -torch.inf
    masked[2, -1] = 0.5
    cases.append({"scores": masked, "block_size": block, "values_shape": [masked.shape[1], 2]})
    for case in cases:
        scores = case.pop("scores")
        shape = case.pop("values_shape") or [*scores.shape, rng.randint(2, 5)]
        case.update(scores=scores, values=torch.randn(*shape, generator=gen))
    return {"cases": cases}


def _online(sub, case):
    return [online_of(sub, c) for c in case["cases"]]


@online_softmax
@split(setup=_online_case, produce=single_threaded(_online))
def test_online_softmax_agrees_with_reference(outputs, case, ref):
    """hidden: the online softmax on random rows (a short last block, scores + 1000, leading -inf blocks)"""
    expect_list(outputs, len(case["cases"]), "the online softmax results")
    for c, out in zip(case["cases"], outputs, strict=True):
        out_ref, lse_ref = ref.online_softmax_weighted_sum(c["scores"], c["values"], c["block_size"])
        expect_online(out, c, {"out": out_ref, "lse": lse_ref}, f"hidden scores {tuple(c['scores'].shape)}")


def _attention_cases(seed, with_grads):
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    cases = []
    small, large = rng.randint(3, 6), rng.randint(7, 12)
    for is_causal, q_block, k_block, same_length in (
        (True, large, small, True),
        (True, small, large, True),
        (False, rng.randint(4, 9), rng.randint(4, 9), False),
    ):
        d = rng.choice([8, 12, 16])
        lead = [rng.randint(1, 2), rng.randint(1, 3)]
        n_q = rng.randint(2 * large + 1, 4 * large) | 1  # odd: not a multiple of an even block
        n_k = n_q if same_length else n_q + rng.randint(5, 20)
        case = {
            "Q": torch.randn(*lead, n_q, d, generator=gen),
            "K": torch.randn(*lead, n_k, d, generator=gen),
            "V": torch.randn(*lead, n_k, d, generator=gen),
            "is_causal": is_causal,
            "q_block": q_block,
            "k_block": k_block,
        }
        if with_grads:
            case["dO"] = torch.randn(*lead, n_q, d, generator=gen)
        cases.append(case)
    return cases


def _what(c) -> str:
    causal = "causal " if c["is_causal"] else ""
    return (
        f"hidden {causal}{tuple(c['Q'].shape)} queries, {c['K'].shape[-2]} keys, tiles {c['q_block']} x {c['k_block']}"
    )


def _forward_case(ref, seed):
    cases = _attention_cases(seed, with_grads=False)
    for c in cases:
        output, L = ref.flash_attention_forward(c["Q"], c["K"], c["V"], c["is_causal"], c["q_block"], c["k_block"])
        c["expected"] = {"O": output, "L": L}
    return {"cases": cases}


def _forwards(sub, case):
    return [forward_of(sub, c) for c in case["cases"]]


@flash_forward
@split(setup=_forward_case, produce=single_threaded(_forwards))
def test_flash_forward_agrees_with_reference(outputs, case):
    """hidden: tiled forward on random lengths and tiles (causal with either block larger, fewer queries than keys)"""
    expect_list(outputs, len(case["cases"]), "the flash_attention_forward results")
    for c, out in zip(case["cases"], outputs, strict=True):
        expect_forward(out, c, c["expected"], _what(c))


def _backward_case(ref, seed):
    cases = _attention_cases(seed + 1, with_grads=True)
    for c in cases:
        Q, K, V = (c[name].clone().requires_grad_(True) for name in ("Q", "K", "V"))
        output = ref.FlashAttention2.apply(Q, K, V, c["is_causal"], c["q_block"], c["k_block"])
        output.backward(c["dO"])
        _, L = ref.flash_attention_forward(c["Q"], c["K"], c["V"], c["is_causal"], c["q_block"], c["k_block"])
        c["expected"] = {"O": output.detach(), "L": L, "grads": [Q.grad, K.grad, V.grad]}
    return {"cases": cases}


def _backwards(sub, case):
    return [{"direct": backward_of(sub, c), "function": function_of(sub, c)} for c in case["cases"]]


@flash_backward
@split(setup=_backward_case, produce=single_threaded(_backwards))
def test_flash_backward_agrees_with_reference(outputs, case):
    """hidden: the tiled backward and FlashAttention2 on random lengths and tiles (gradients, saved tensors)"""
    expect_list(outputs, len(case["cases"]), "the flash backward results")
    for c, out in zip(case["cases"], outputs, strict=True):
        what = _what(c)
        expect_list(out["direct"]["grads"], 3, "(dQ, dK, dV)")
        expect_grads(out["direct"]["grads"], c, c["expected"]["grads"], what)
        expect_tiles(out["direct"]["exp"], c, f"flash_attention_backward on {what}")
        expect_function(out["function"], c, c["expected"], what)


def _window_case(ref, seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    window = rng.randint(2, 5)
    heads = rng.choice([1, 2, 4])
    config = {
        "d_in": rng.randint(4, 10),
        "d_out": heads * rng.randint(2, 4),
        "context_length": 64,
        "num_heads": heads,
        "window_size": window,
        "qkv_bias": rng.random() < 0.5,
    }
    layer = ref.SlidingWindowAttention(
        config["d_in"], config["d_out"], 64, 0.0, heads, window, config["qkv_bias"]
    ).eval()
    prompt = window + rng.randint(1, 4)  # a first chunk longer than the window
    n = prompt + rng.randint(6, 10)
    x = torch.randn(rng.randint(1, 2), n, config["d_in"])
    chunks = [[0, prompt], [prompt, prompt + 1], [prompt + 1, prompt + 4], [prompt + 4, prompt + 5], [prompt + 5, n]]
    with torch.no_grad():
        expected = layer(x)
    masks = [
        {"num_tokens": rng.randint(6, 12), "window_size": rng.randint(2, 5)},
        {"num_tokens": rng.randint(3, 6), "window_size": rng.randint(7, 9)},
        {"num_tokens": rng.randint(3, 6), "window_size": 1},
    ]
    for m in masks:
        m["mask"] = ref.sliding_window_mask(m["num_tokens"], m["window_size"])
    lm_config = {
        "d": 4 * rng.randint(2, 4),
        "vocab_size": rng.randint(10, 30),
        "context_length": 40,
        "num_heads": 2,
        "window_size": rng.randint(2, 4),
        "num_layers": 2,
    }
    model = build_window_lm(ref.SlidingWindowAttention, lm_config)
    prompt_ids = torch.randint(0, lm_config["vocab_size"], (1, rng.randint(3, 7)))
    steps = 12
    return {
        "window": {"config": config, "state": parameter_state(layer), "x": x, "chunks": chunks, "expected": expected},
        "masks": masks,
        "generation": {
            "config": lm_config,
            "state": parameter_state(model),
            "prompt": prompt_ids,
            "steps": steps,
            "expected": generate_both_ways(model, prompt_ids, steps)["uncached"],
        },
    }


def _windows(sub, case):
    g = case["generation"]
    return {
        "window": window_outputs(sub, case["window"]),
        "masks": masks_of(sub, case["masks"]),
        "generation": generate_both_ways(
            build_window_lm(sub.SlidingWindowAttention, g["config"], g["state"]), g["prompt"], g["steps"]
        ),
    }


@sliding_window
@split(setup=_window_case, produce=single_threaded(_windows))
def test_sliding_window_agrees_with_reference(outputs, case):
    """hidden: masks, a random layer fed whole and in chunks through its cache, and cached generation"""
    expect_masks(outputs["masks"], case["masks"], [m["mask"] for m in case["masks"]])
    window = case["window"]
    expect_window(
        outputs["window"], window, window["expected"], f"a hidden layer with window {window['config']['window_size']}"
    )
    expect_generation(outputs["generation"], case["generation"], case["generation"]["expected"], "a hidden toy model")


def _rope_case(seed):
    rng = random.Random(seed)
    cases = []
    for method in ROPE_FUNCTIONS:
        head_dim = rng.choice([16, 32, 64, 128])
        theta = rng.choice([10_000.0, 500_000.0, 1_000_000.0])
        factor = rng.choice([2.0, 4.0, 8.0, 3.5, 16.0])
        args = [head_dim, theta, factor]
        kwargs = {}
        if method == "yarn":
            args.append(rng.choice([2048, 4096, 8192]))
            kwargs = {"beta_fast": float(rng.choice([16, 32])), "beta_slow": float(rng.choice([1, 2]))}
        cases.append({"method": method, "args": args, "kwargs": kwargs})
    return {"cases": cases}


@rope_scaling
@split(setup=_rope_case, produce=lambda sub, case: rope_of(sub, case["cases"]))
def test_rope_scaling_agrees_with_reference(outputs, case, ref):
    """hidden: linear, NTK-aware and YaRN frequencies for random head sizes, bases, factors and betas"""
    expected = []
    for c in case["cases"]:
        result = getattr(ref, ROPE_FUNCTIONS[c["method"]])(*c["args"], **c["kwargs"])
        if c["method"] == "yarn":
            expected.append({"inv_freq": result[0], "attention_factor": result[1]})
        else:
            expected.append({"inv_freq": result, "attention_factor": None})
    expect_rope(outputs, case["cases"], expected)


def _alibi_case(seed):
    rng = random.Random(seed)
    power = rng.choice([4, 8, 16, 32])
    other = rng.choice([n for n in range(3, 40) if n & (n - 1)])  # not a power of two
    return {"slopes_for": [power, other], "biases_for": [[other, rng.randint(4, 12)], [power, rng.randint(2, 9)]]}


@alibi
@split(setup=_alibi_case, produce=lambda sub, case: alibi_of(sub, case["slopes_for"], case["biases_for"]))
def test_alibi_agrees_with_reference(outputs, case, ref):
    """hidden: ALiBi slopes and biases for a random power of two and a random other head count"""
    slopes = [ref.alibi_slopes(n) for n in case["slopes_for"]]
    biases = [ref.alibi_bias(h, t) for h, t in case["biases_for"]]
    expect_alibi(outputs, case["slopes_for"], case["biases_for"], slopes, biases)
