"""Public checks of chapter 8: from GPT to Llama.

RMSNorm, SiLU and attention are compared with PyTorch's own (called by the checks,
never by the exercises); the modules get recorded parameters by name and must
reproduce the reference's recorded outputs; the loader must reproduce the logits
Hugging Face's LlamaForCausalLM computed; cached generation must agree with the
submission's own model run without a cache. Blocks and models are also compared with
their own parts put together, and an output that matches a known mistake (LayerNorm
for RMSNorm, a post-norm block, tiled key/value heads, ...) gets a message naming it.

Every check is split (`autograder.split`): its produce step runs the submission and
returns tensors, numbers and lists (the outputs, the parts put together, what was
observed of the submission's objects), and its compare step decides from them.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import layer_norm as torch_layer_norm
from torch.nn.functional import rms_norm as torch_rms_norm
from torch.nn.functional import scaled_dot_product_attention as torch_attention
from torch.nn.functional import silu as torch_silu

from autograder.checks.llama_setups import LLAMA31_SCALING, SMALL_LLAMA, ranks, write_ranks
from autograder.checks.modules import (
    causal_probe,
    expect_causal,
    expect_gradients_reach,
    expect_parameter_shapes,
    expect_recorded_outputs,
    gradient_probe,
    load_parameters,
    parameter_shapes,
    randomised,
    recorded_outputs,
)
from autograder.compare import (
    expect,
    expect_close,
    expect_close_or_name_the_mistake,
    expect_equal_tensor,
    expect_list,
    expect_sequence_equal,
    expect_tensor,
    expect_text_equal,
    fail,
)
from autograder.split import split
from llmcourse.fast_init import skipped_init

rms_norm = pytest.mark.ch08_rms_norm(
    pytest.mark.forbid("torch.nn.RMSNorm", "torch.nn.functional.rms_norm", "torch.rms_norm")
)
swiglu = pytest.mark.ch08_swiglu
rope = pytest.mark.ch08_rope
grouped_query_attention = pytest.mark.ch08_grouped_query_attention
llama_model = pytest.mark.ch08_llama_model
kv_cache = pytest.mark.ch08_kv_cache
load_llama_weights = pytest.mark.ch08_load_llama_weights
llama3_tokenizer = pytest.mark.ch08_llama3_tokenizer

# Sums over widths of 24 to 64 in another order differ by ~1e-7; two blocks deep, by ~1e-6.
ATOL = 1e-5
# Llama 3.2 1B with its own output head: the parameter count the from-scratch notebooks print.
LLAMA32_1B = {
    "vocab_size": 128_256,
    "context_length": 8192,
    "emb_dim": 2048,
    "n_heads": 32,
    "n_layers": 16,
    "hidden_dim": 8192,
    "n_kv_groups": 8,
    "rope_base": 500_000.0,
    "rope_freq": {**LLAMA31_SCALING, "factor": 32.0},
    "dtype": torch.bfloat16,
}
LLAMA32_1B_PARAMETERS = 1_498_482_688


def _no_grad(function, *args):
    with torch.no_grad():
        return function(*args)


def _causal_mask(num_tokens: int) -> torch.Tensor:
    return torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1)


def _tables(cos_and_sin) -> dict:
    """compute_rope_params' (cos, sin) as {"cos": ..., "sin": ...}; fails unless it is a pair."""
    cos, sin = cos_and_sin
    return {"cos": cos, "sin": sin}


def _exception_classes(exc: BaseException) -> list[str]:
    """The names of the classes an exception is an instance of, its own first (what `except` tests)."""
    return [cls.__name__ for cls in type(exc).__mro__]


def _listed_then_expected(listed, expected) -> list:
    """The names in `listed` (a dict by parameter name from the submission's process, in its order; none
    if it is no dict), then those of `expected` it lacks: what a check of every parameter goes through."""
    names = list(listed) if isinstance(listed, dict) else []
    return [*names, *(name for name in expected if name not in names)]


# ---------------------------------------------------------------- ch08.rms_norm


def _rms_norm_inputs() -> torch.Tensor:
    """(3, 4, 10) rows of very different sizes, down to a mean square of 1e-6 where eps shows, and
    rows far from zero mean, where subtracting the mean shows."""
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(3, 4, 10, generator=generator) * torch.tensor([5.0, 1.0, 0.1, 0.001]).view(1, 4, 1)
    return x + torch.tensor([2.0, 0.0, 0.5]).view(3, 1, 1)


def _rms_norm_weight() -> torch.Tensor:
    """(10,) the weight the checks load into RMSNorm(10)."""
    return torch.linspace(0.5, 2.0, 10)


_RMS_NORM_EPS = (1e-5, 1e-3)
# (shape, dtype) of the inputs RMSNorm(8) must return unchanged in shape and dtype.
_RMS_NORM_INPUTS = (((8,), torch.float32), ((2, 3, 5, 8), torch.float32), ((4, 8), torch.bfloat16))


def _new_rms_norm(sub):
    norm = sub.RMSNorm(10)
    return {"shapes": parameter_shapes(norm, "RMSNorm(10)"), "weight": dict(norm.named_parameters()).get("weight")}


@rms_norm
@split(produce=_new_rms_norm)
def test_rms_norm_has_one_weight_starting_at_ones(outputs):
    expect_parameter_shapes(outputs["shapes"], {"weight": torch.ones(10)}, "RMSNorm(10)")
    expect_close(outputs["weight"], torch.ones(10), "RMSNorm(10).weight at the start", atol=0)


def _rms_norm_outputs(sub):
    """RMSNorm(10, eps) with `_rms_norm_weight` on `_rms_norm_inputs`, for each eps of _RMS_NORM_EPS."""
    outputs = []
    for eps in _RMS_NORM_EPS:
        norm = sub.RMSNorm(10, eps=eps)
        with torch.no_grad():
            norm.weight.copy_(_rms_norm_weight())
        outputs.append(_no_grad(norm, _rms_norm_inputs()))
    return outputs


@rms_norm
@split(produce=_rms_norm_outputs)
def test_rms_norm_matches_pytorch(outputs):
    x, weight = _rms_norm_inputs(), _rms_norm_weight()
    expect_list(outputs, len(_RMS_NORM_EPS), "the RMSNorm(10, eps) outputs")
    for eps, actual in zip(_RMS_NORM_EPS, outputs, strict=True):
        expect_tensor(actual, f"RMSNorm(10, eps={eps}) output", shape=tuple(x.shape))
        # Subtracting the mean from rows far from zero loses digits: the mistakes are matched loosely.
        expect_close_or_name_the_mistake(
            actual,
            torch_rms_norm(x, (10,), weight, eps),
            f"RMSNorm(10, eps={eps}) output",
            f"RMSNorm(10, eps={eps})",
            _rms_norm_mistakes(x, weight, eps),
            atol=1e-5,
            mistake_atol=1e-3,
        )


def _rms_norm_mistakes(x: torch.Tensor, weight: torch.Tensor, eps: float):
    """(what went wrong, the output it gives) for normalisations that are easy to get wrong."""
    width, mean_square = x.shape[-1:], x.pow(2).mean(dim=-1, keepdim=True)
    yield (
        "subtracts the mean (that is LayerNorm): divide x itself by its root mean square",
        torch_layer_norm(x, width, weight, eps=eps),
    )
    yield (
        "divides by the standard deviation (the mean taken out of x**2): RMSNorm uses the root mean square, "
        "sqrt(mean(x**2) + eps)",
        x / torch.sqrt(x.var(dim=-1, keepdim=True, unbiased=False) + eps) * weight,
    )
    yield (
        "adds eps after the square root: it belongs inside, sqrt(mean(x**2) + eps)",
        x / (mean_square.sqrt() + eps) * weight,
    )
    for other in (0.0, 1e-6, 1e-5, 1e-8):
        if other != eps:
            yield (f"uses eps = {other:g}: use the eps given to __init__", torch_rms_norm(x, width, weight, other))
    yield "never multiplies by its weight", torch_rms_norm(x, width, None, eps)


def _rms_norm_on_each_input(sub):
    norm = sub.RMSNorm(8)
    return [_no_grad(norm, torch.randn(shape, dtype=dtype)) for shape, dtype in _RMS_NORM_INPUTS]


@rms_norm
@split(produce=_rms_norm_on_each_input)
def test_rms_norm_keeps_shape_and_dtype(outputs):
    expect_list(outputs, len(_RMS_NORM_INPUTS), "the RMSNorm(8) outputs")
    for (shape, dtype), out in zip(_RMS_NORM_INPUTS, outputs, strict=True):
        expect_tensor(out, f"RMSNorm(8) on a {dtype} input of shape {shape}", shape=shape, dtype=dtype)


def _rms_norm_float16_input() -> torch.Tensor:
    """(2, 3, 16) float16 values of a few hundred: every row has squares above float16's largest number, 65504."""
    return (torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(8)) * 250).half()


def _rms_norm_on_float16(sub):
    """RMSNorm(16) with weights from 0.5 to 2 on `_rms_norm_float16_input`."""
    norm = sub.RMSNorm(16)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
    return _no_grad(norm, _rms_norm_float16_input())


def expect_float16_rms_norm(actual, expected: torch.Tensor, what: str) -> None:
    """Compare: `actual`, RMSNorm's output on float16 values of a few hundred (no input row of zeros), is
    finite, has no row of zeros, and is close to `expected` (computed in float32, then cast to float16)."""
    expect_tensor(actual, what, shape=tuple(expected.shape), dtype=torch.float16)
    overflow = (
        "x**2 overflows float16 (its largest number is 65504) to inf, so the mean square is inf: "
        "compute in float32 (x.float()) and cast the result back to x's dtype"
    )
    expect(bool(actual.isfinite().all()), f"{what} is inf or nan: {overflow}")
    expect(not bool((actual == 0).all(dim=-1).any()), f"{what} has rows of zeros: {overflow}")
    expect_close(actual, expected, what, atol=1e-2, rtol=1e-2)


@rms_norm
@split(produce=_rms_norm_on_float16)
def test_rms_norm_float16_input_does_not_overflow(outputs):
    x = _rms_norm_float16_input()
    expected = torch_rms_norm(x.float(), (16,), torch.linspace(0.5, 2.0, 16), 1e-5).half()
    expect_float16_rms_norm(outputs, expected, "RMSNorm(16) on a float16 input with values of a few hundred")


def _rms_norm_gradients(sub):
    norm = sub.RMSNorm(10)
    return gradient_probe(norm, norm(_rms_norm_inputs()), "RMSNorm")


@rms_norm
@split(produce=_rms_norm_gradients)
def test_rms_norm_gradient_reaches_weight(outputs):
    expect_gradients_reach(outputs, _listed_then_expected(outputs, ["weight"]), "RMSNorm")


# ---------------------------------------------------------------- ch08.swiglu


def _feed_forward_cfg(**changes) -> dict:
    return {"emb_dim": 6, "hidden_dim": 10, "dtype": None, **changes}


_FEED_FORWARD_LAYERS = ("fc1", "fc2", "fc3")
_FEED_FORWARD_PARAMETERS = {
    "fc1.weight": torch.empty(10, 6),
    "fc2.weight": torch.empty(10, 6),
    "fc3.weight": torch.empty(6, 10),
}


def _silu_input() -> torch.Tensor:
    return torch.linspace(-8, 8, 33).view(3, 11)


def _silu_output(sub):
    return _no_grad(sub.SiLU(), _silu_input())


@swiglu
@pytest.mark.forbid("torch.nn.SiLU", "torch.nn.functional.silu")
@split(produce=_silu_output)
def test_silu_matches_pytorch(outputs):
    expect_close(outputs, torch_silu(_silu_input()), "SiLU()(x)", atol=1e-6)


def _feed_forward_shapes(sub):
    return parameter_shapes(sub.FeedForward(_feed_forward_cfg()), "FeedForward (emb_dim 6, hidden_dim 10)")


@swiglu
@split(produce=_feed_forward_shapes)
def test_feed_forward_layers(outputs):
    expect_parameter_shapes(outputs, _FEED_FORWARD_PARAMETERS, "FeedForward (emb_dim 6, hidden_dim 10)")


def _feed_forward_input() -> torch.Tensor:
    """(2, 5, 6)"""
    return torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(3))


def _feed_forward_with_its_weights(sub):
    """A FeedForward with random weights: its output on `_feed_forward_input` and its three weights."""
    module = randomised(sub.FeedForward(_feed_forward_cfg()), seed=2).eval()
    weights = {name: getattr(module, name).weight.detach() for name in _FEED_FORWARD_LAYERS}
    return {"out": _no_grad(module, _feed_forward_input()), "weights": weights}


@swiglu
@split(produce=_feed_forward_with_its_weights)
def test_feed_forward_is_swiglu(outputs):
    x, actual, weights = _feed_forward_input(), outputs["out"], outputs["weights"]
    for name in _FEED_FORWARD_LAYERS:
        expect_tensor(weights[name], f"FeedForward.{name}.weight")
    fc1, fc2, fc3 = (weights[name] for name in _FEED_FORWARD_LAYERS)
    expect_tensor(actual, "FeedForward output", shape=(2, 5, 6))
    if torch.allclose(actual, (x @ fc1.T * torch_silu(x @ fc2.T)) @ fc3.T, atol=ATOL):
        fail("FeedForward applies SiLU to fc2's output: the gate is silu(fc1(x)), multiplied by fc2(x)")
    expect_close(
        actual,
        (torch_silu(x @ fc1.T) * (x @ fc2.T)) @ fc3.T,
        "FeedForward output (fc3(silu(fc1(x)) * fc2(x)))",
        atol=ATOL,
    )


def _feed_forward_dtypes(sub):
    module = sub.FeedForward(_feed_forward_cfg(dtype=torch.bfloat16))
    return {name: str(param.dtype) for name, param in module.named_parameters()}


@swiglu
@split(produce=_feed_forward_dtypes)
def test_feed_forward_uses_the_configured_dtype(outputs):
    for name in _listed_then_expected(outputs, _FEED_FORWARD_PARAMETERS):
        dtype = outputs.get(name)
        expect(dtype is not None, f"FeedForward with cfg['dtype'] bfloat16 has no parameter {name}")
        expect(dtype == str(torch.bfloat16), f"FeedForward with cfg['dtype'] bfloat16 has {name} in {dtype}")


def _feed_forward_gradients(sub):
    module = randomised(sub.FeedForward(_feed_forward_cfg()), seed=4)
    return gradient_probe(module, module(torch.randn(2, 3, 6)), "FeedForward")


@swiglu
@split(produce=_feed_forward_gradients)
def test_feed_forward_gradients_reach_every_layer(outputs):
    expect_gradients_reach(outputs, _listed_then_expected(outputs, _FEED_FORWARD_PARAMETERS), "FeedForward")


# ---------------------------------------------------------------- ch08.rope


def _small_tables(sub):
    return _tables(sub.compute_rope_params(16, theta_base=10_000, context_length=12))


@rope
@split(produce=_small_tables)
def test_rope_tables_shape_and_position_zero(outputs):
    cos, sin = outputs["cos"], outputs["sin"]
    expect_tensor(cos, "cos of compute_rope_params(16, context_length=12)", shape=(12, 16), dtype=torch.float32)
    expect_tensor(sin, "sin of compute_rope_params(16, context_length=12)", shape=(12, 16), dtype=torch.float32)
    expect_close(cos[0], torch.ones(16), "cos at position 0 (no rotation)", atol=1e-6)
    expect_close(sin[0], torch.zeros(16), "sin at position 0 (no rotation)", atol=1e-6)


@rope
@split(produce=_small_tables)
def test_rope_tables_repeat_the_angles_in_both_halves(outputs):
    cos, sin = outputs["cos"], outputs["sin"]
    expect_tensor(cos, "cos of compute_rope_params(16, context_length=12)", shape=(12, 16))
    expect_tensor(sin, "sin of compute_rope_params(16, context_length=12)", shape=(12, 16))
    expect(
        torch.allclose(cos[:, :8], cos[:, 8:]) and torch.allclose(sin[:, :8], sin[:, 8:]),
        "the two halves of the cos/sin rows differ: in the rotate-half layout dimension i and i + head_dim // 2 "
        "form a pair and turn by the same angle, so each row is the angles of the head_dim // 2 pairs twice",
    )


def _tables_for_each_theta(sub, recorded):
    return [
        _tables(sub.compute_rope_params(16, theta_base=theta, context_length=12))
        for theta in recorded["rope"]["tables"]
    ]


@rope
@split(produce=_tables_for_each_theta)
def test_rope_tables_match_recorded(outputs, recorded):
    expected = recorded["rope"]["tables"]
    expect_list(outputs, len(expected), "the compute_rope_params tables")
    for (theta, (cos, sin)), actual in zip(expected.items(), outputs, strict=True):
        expect_close(actual["cos"], cos, f"cos of compute_rope_params(16, theta_base={theta})", atol=1e-5)
        expect_close(actual["sin"], sin, f"sin of compute_rope_params(16, theta_base={theta})", atol=1e-5)


def _scaled_tables(sub):
    return _tables(
        sub.compute_rope_params(64, theta_base=500_000, context_length=40, freq_config=dict(LLAMA31_SCALING))
    )


@rope
@split(produce=_scaled_tables)
def test_rope_frequency_scaling_matches_recorded(outputs, recorded):
    cos, sin = recorded["rope"]["scaled"]
    unscaled_cos, _ = recorded["rope"]["unscaled"]
    actual_cos, actual_sin = outputs["cos"], outputs["sin"]
    expect_tensor(actual_cos, "cos with Llama 3.1's freq_config", shape=(40, 64))
    if torch.allclose(actual_cos, unscaled_cos, atol=1e-5):
        fail("compute_rope_params ignores freq_config: with Llama 3.1's scaling the low frequencies turn slower")
    # Position 1's angles are the inverse frequencies themselves: compare them pair by pair.
    expect_close(
        actual_cos[1, :32], cos[1, :32], "cos at position 1 (one angle per pair) with Llama 3.1's scaling", atol=1e-6
    )
    expect_close(actual_cos, cos, "cos with Llama 3.1's scaling", atol=1e-5)
    expect_close(actual_sin, sin, "sin with Llama 3.1's scaling", atol=1e-5)


def _recorded_rotation(sub, recorded):
    """apply_rope on the recorded 7 tokens with the recorded 12-row tables, or the RuntimeError's message."""
    case = recorded["rope"]
    cos, sin = case["tables"][10_000]
    try:
        return {"rotated": sub.apply_rope(case["x"], cos, sin), "error": None}
    except NotImplementedError:
        raise
    except RuntimeError as exc:
        return {"rotated": None, "error": str(exc)}


@rope
@split(produce=_recorded_rotation)
def test_apply_rope_matches_recorded(outputs, recorded):
    case = recorded["rope"]
    cos, sin = case["tables"][10_000]
    if outputs["error"] is not None:
        fail(
            f"apply_rope on 7 tokens with cos/sin tables of 12 rows raised: {outputs['error']} "
            "(use the tables' first num_tokens rows)"
        )
    actual = outputs["rotated"]
    expect_tensor(actual, "apply_rope output", shape=(2, 3, 7, 16), dtype=torch.float32)
    expect_close_or_name_the_mistake(
        actual,
        case["rotated"],
        "apply_rope output (rotate-half layout: dimension i pairs with i + 8)",
        "apply_rope",
        _rope_mistakes(case["x"], cos[:7], sin[:7]),
        atol=1e-5,
    )


def _rope_mistakes(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    """(what went wrong, the output it gives) for rotations that are easy to get wrong."""
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    even, odd = x[..., 0::2], x[..., 1::2]
    yield (
        "turns the vectors the wrong way: rotate_half(x) is cat(-x2, x1), not cat(x2, -x1)",
        x * cos + torch.cat([second, -first], dim=-1) * sin,
    )
    yield "has cos and sin swapped: x * cos + rotate_half(x) * sin", x * sin + torch.cat([-second, first], dim=-1) * cos
    yield (
        "pairs neighbouring dimensions (2i, 2i + 1), the interleaved layout; in the rotate-half layout dimension i "
        "pairs with i + head_dim // 2",
        x * cos + torch.stack([-odd, even], dim=-1).flatten(-2) * sin,
    )
    yield (
        "splits x into its even and odd dimensions; in the rotate-half layout x1 and x2 are the first and the second "
        "half",
        x * cos + torch.cat([-odd, even], dim=-1) * sin,
    )


def _bfloat16_rotation(sub):
    x = torch.randn(1, 2, 5, 8).to(torch.bfloat16)
    cos, sin = sub.compute_rope_params(8, context_length=9)
    return sub.apply_rope(x, cos, sin)


@rope
@split(produce=_bfloat16_rotation)
def test_apply_rope_keeps_the_input_dtype(outputs):
    expect_tensor(
        outputs,
        "apply_rope on bfloat16 queries with float32 tables",
        shape=(1, 2, 5, 8),
        dtype=torch.bfloat16,
    )


def _rotated_vectors_input() -> torch.Tensor:
    """(1, 2, 9, 8)"""
    return torch.randn(1, 2, 9, 8, generator=torch.Generator().manual_seed(11))


def _rotated_vectors(sub):
    cos, sin = sub.compute_rope_params(8, context_length=9)
    return sub.apply_rope(_rotated_vectors_input(), cos, sin)


@rope
@split(produce=_rotated_vectors)
def test_apply_rope_keeps_vector_lengths(outputs):
    x = _rotated_vectors_input()
    expect_tensor(outputs, "apply_rope output")
    expect_close(
        outputs.norm(dim=-1),
        x.norm(dim=-1),
        "the length of each rotated vector (a rotation keeps lengths)",
        atol=1e-5,
    )


_SHIFTS = (0, 1, 7, 14)


def _queries_and_keys() -> tuple[torch.Tensor, torch.Tensor]:
    """q and k, each (1, 2, 6, 8)"""
    generator = torch.Generator().manual_seed(9)
    return torch.randn(1, 2, 6, 8, generator=generator), torch.randn(1, 2, 6, 8, generator=generator)


def _shifted_rotations(sub):
    """`_queries_and_keys` rotated from each position of _SHIFTS on (the tables' rows from there on)."""
    q, k = _queries_and_keys()
    cos, sin = sub.compute_rope_params(8, context_length=20)
    return [
        {"q": sub.apply_rope(q, cos[shift:], sin[shift:]), "k": sub.apply_rope(k, cos[shift:], sin[shift:])}
        for shift in _SHIFTS
    ]


@rope
@split(produce=_shifted_rotations)
def test_rope_scores_depend_only_on_relative_position(outputs):
    expect_list(outputs, len(_SHIFTS), "the apply_rope outputs")
    scores = []
    for rotated in outputs:
        expect_tensor(rotated["q"], "apply_rope output", shape=(1, 2, 6, 8))
        expect_tensor(rotated["k"], "apply_rope output", shape=(1, 2, 6, 8))
        scores.append(rotated["q"] @ rotated["k"].transpose(-1, -2))
    for shift, shifted in zip(_SHIFTS[1:], scores[1:], strict=True):
        expect_close(
            shifted,
            scores[0],
            f"query-key scores with every position moved by {shift} (RoPE makes scores depend "
            "on the distance between positions only)",
            atol=1e-4,
        )


# ---------------------------------------------------------------- ch08.grouped_query_attention


def _gqa(sub, case: dict):
    d_in, d_out, num_heads, num_kv_groups = case["shape"]
    module = sub.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups)
    return load_parameters(module, case["state"], f"GroupedQueryAttention{case['shape']}").eval()


def _gqa_heads(case: dict, num_heads: int, num_kv_groups: int, head_dim: int) -> dict[str, torch.Tensor]:
    """The case's x through its recorded projections, split into heads: {"q": (batch, num_heads, num_tokens,
    head_dim), "k" and "v": (batch, num_kv_groups, num_tokens, head_dim)}."""
    x, state = case["x"], case["state"]
    b, n, _ = x.shape
    projections = {"q": ("W_query", num_heads), "k": ("W_key", num_kv_groups), "v": ("W_value", num_kv_groups)}
    return {
        name: (x @ state[f"{layer}.weight"].T).view(b, n, count, head_dim).transpose(1, 2)
        for name, (layer, count) in projections.items()
    }


def _pytorch_gqa(
    case: dict,
    heads: dict,
    rotated: dict,
    rotate: str = "qk",
    scale: float | None = None,
    causal: bool = True,
    tiled: bool = False,
) -> torch.Tensor:
    """The case's attention through PyTorch's scaled_dot_product_attention, with the submission's RoPE.

    heads: the submission's num_heads, num_kv_groups and head_dim; rotated: its apply_rope of the
    queries, keys and values of `_gqa_heads`. The keywords make the usual mistakes: `rotate` names
    the projections RoPE turns, `scale` replaces 1 / sqrt(head_dim), `causal=False` drops the mask
    and `tiled` gives query head h the key/value head h % num_kv_groups.
    """
    b, n, _ = case["x"].shape
    num_heads, groups, head_dim = heads["num_heads"], heads["num_kv_groups"], heads["head_dim"]
    plain = _gqa_heads(case, num_heads, groups, head_dim)
    q, k, v = (rotated[name] if name in rotate else plain[name] for name in "qkv")
    if tiled:
        k, v = k.repeat(1, num_heads // groups, 1, 1), v.repeat(1, num_heads // groups, 1, 1)
    context = torch_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True)
    return context.transpose(1, 2).reshape(b, n, num_heads * head_dim) @ case["state"]["out_proj.weight"].T


def _gqa_mistakes(case: dict, heads: dict, rotated: dict):
    """(what went wrong, the output it gives) for attentions that are easy to get wrong."""
    num_heads, groups, head_dim = heads["num_heads"], heads["num_kv_groups"], heads["head_dim"]
    if groups not in (1, num_heads):
        yield (
            (
                f"gives query head h the key/value head h % {groups} (tiled, as .repeat does); with {num_heads} heads "
                f"in {groups} groups, query heads 0..{num_heads // groups - 1} share key/value head 0, the next ones "
                "head 1, and so on (repeat_interleave)"
            ),
            _pytorch_gqa(case, heads, rotated, tiled=True),
        )
    yield (
        "rotates the values too: RoPE turns the queries and the keys only",
        _pytorch_gqa(case, heads, rotated, rotate="qkv"),
    )
    yield "rotates the queries but not the keys", _pytorch_gqa(case, heads, rotated, rotate="q")
    yield "rotates the keys but not the queries", _pytorch_gqa(case, heads, rotated, rotate="k")
    yield (
        "rotates neither queries nor keys (apply_rope is never called)",
        _pytorch_gqa(case, heads, rotated, rotate=""),
    )
    yield (
        f"scales the scores by 1 / sqrt(d_out); the scale is 1 / sqrt(head_dim) = 1 / sqrt({head_dim})",
        _pytorch_gqa(case, heads, rotated, scale=(num_heads * head_dim) ** -0.5),
    )
    yield "does not scale the scores by 1 / sqrt(head_dim)", _pytorch_gqa(case, heads, rotated, scale=1.0)
    yield (
        "ignores the mask: each token attends to the tokens after it too (the mask is True where a key is hidden)",
        _pytorch_gqa(case, heads, rotated, causal=False),
    )


_GQA_ATTRIBUTES = (("num_heads", 6), ("num_kv_groups", 2), ("head_dim", 4))


def _gqa_layout(sub):
    try:
        module = sub.GroupedQueryAttention(10, 24, 6, 2)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - compare tells what raised it
        return {"raised": f"{type(exc).__name__}: {exc}"[:300]}
    return {
        "raised": None,
        "shapes": parameter_shapes(module, "GroupedQueryAttention(d_in=10, d_out=24, num_heads=6, num_kv_groups=2)"),
        "attributes": {attribute: getattr(module, attribute, None) for attribute, _ in _GQA_ATTRIBUTES},
    }


@grouped_query_attention
@split(produce=_gqa_layout)
def test_gqa_projections_and_attributes(outputs):
    if outputs.get("raised") is not None:
        fail(
            f"GroupedQueryAttention(d_in=10, d_out=24, num_heads=6, num_kv_groups=2) raised {outputs['raised']}: "
            "d_out 24 is divisible by the 6 heads and the 6 heads by the 2 groups (d_in can be any size), "
            "so it should be built"
        )
    expected = {
        "W_query.weight": torch.empty(24, 10),
        "W_key.weight": torch.empty(8, 10),
        "W_value.weight": torch.empty(8, 10),
        "out_proj.weight": torch.empty(24, 24),
    }
    expect_parameter_shapes(
        outputs["shapes"], expected, "GroupedQueryAttention(d_in=10, d_out=24, num_heads=6, num_kv_groups=2)"
    )
    for attribute, value in _GQA_ATTRIBUTES:
        got = outputs["attributes"].get(attribute)
        expect(got == value, f"GroupedQueryAttention(10, 24, 6, 2).{attribute} should be {value}; got {got!r}")


_INDIVISIBLE_GQA = (((8, 12, 6, 4), "6 heads in 4 groups"), ((8, 10, 4, 2), "d_out 10 over 4 heads"))


def gqa_construction_errors(sub, configurations) -> list:
    """Produce: for each (d_in, d_out, num_heads, num_kv_groups), the classes of what building a
    GroupedQueryAttention raised (its own class first); None where it was built."""
    raised = []
    for args in configurations:
        try:
            sub.GroupedQueryAttention(*args)
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - what was raised is the check's business
            raised.append(_exception_classes(exc))
            continue
        raised.append(None)
    return raised


def expect_gqa_value_error(raised, what: str) -> None:
    """Compare: `raised` (one item of `gqa_construction_errors`) is a ValueError; `what` names the configuration."""
    if isinstance(raised, list) and "ValueError" in raised:
        return
    if raised is None:
        fail(f"{what} was built: raise a ValueError instead")
    got = raised[0] if isinstance(raised, list) and raised else raised
    if isinstance(raised, list) and "AssertionError" in raised:
        fail(
            f"{what} raised AssertionError (an assert): raise a ValueError, as the exercise says "
            "(asserts are for bugs in your own code, and python -O removes them)"
        )
    fail(f"{what} raised {got}: check the sizes in __init__ and raise a ValueError")


def _indivisible_gqa_errors(sub):
    return gqa_construction_errors(sub, [args for args, _ in _INDIVISIBLE_GQA])


@grouped_query_attention
@split(produce=_indivisible_gqa_errors)
def test_gqa_rejects_heads_not_divisible_by_groups(outputs):
    expect_list(outputs, len(_INDIVISIBLE_GQA), "the GroupedQueryAttention results")
    for (args, problem), raised in zip(_INDIVISIBLE_GQA, outputs, strict=True):
        expect_gqa_value_error(raised, f"GroupedQueryAttention{args} ({problem})")


def _gqa_with_pytorch_parts(sub, recorded):
    """For each recorded case: the submission's attention output, its num_heads, num_kv_groups and
    head_dim, and its apply_rope of the case's queries, keys and values (`_gqa_heads`)."""
    produced = []
    for case in recorded["gqa"]:
        d_in, d_out, num_heads, num_kv_groups = case["shape"]
        module = _gqa(sub, case)
        cos, sin = sub.compute_rope_params(d_out // num_heads, context_length=10)
        actual = _no_grad(module, case["x"], _causal_mask(6), cos, sin)
        expect_tensor(actual, f"GroupedQueryAttention{case['shape']} output", shape=(2, 6, d_out))
        heads = {name: getattr(module, name) for name in ("num_heads", "num_kv_groups", "head_dim")}
        rotated = {name: _no_grad(sub.apply_rope, t, cos, sin) for name, t in _gqa_heads(case, **heads).items()}
        produced.append({"out": actual, "heads": heads, "rotated": rotated})
    return produced


@grouped_query_attention
@split(produce=_gqa_with_pytorch_parts)
def test_gqa_matches_pytorch_attention(outputs, recorded):
    expect_list(outputs, len(recorded["gqa"]), "the GroupedQueryAttention results")
    for case, produced in zip(recorded["gqa"], outputs, strict=True):
        actual, heads, rotated = produced["out"], produced["heads"], produced["rotated"]
        expect_tensor(actual, f"GroupedQueryAttention{case['shape']} output", shape=(2, 6, case["shape"][1]))
        expected = _pytorch_gqa(case, heads, rotated)
        what = f"GroupedQueryAttention{case['shape']}"
        if actual.isnan().any():
            row = int(actual.isnan().nonzero()[0][1])
            fail(
                f"{what} gives nan at position {row}: every key of that query is masked (hide the keys where the mask "
                "is True, the later positions, and keep the others)"
            )
        expect_close_or_name_the_mistake(
            actual,
            expected,
            f"{what} output next to PyTorch's attention",
            what,
            _gqa_mistakes(case, heads, rotated),
        )


def _gqa_recorded_outputs(sub, recorded):
    produced = []
    for case in recorded["gqa"]:
        d_out, num_heads = case["shape"][1], case["shape"][2]
        cos, sin = sub.compute_rope_params(d_out // num_heads, context_length=10)
        produced.append(_no_grad(_gqa(sub, case), case["x"], _causal_mask(6), cos, sin))
    return produced


@grouped_query_attention
@split(produce=_gqa_recorded_outputs)
def test_gqa_matches_recorded(outputs, recorded):
    expect_list(outputs, len(recorded["gqa"]), "the GroupedQueryAttention outputs")
    for case, actual in zip(recorded["gqa"], outputs, strict=True):
        expect_close(actual, case["output"], f"GroupedQueryAttention{case['shape']} output", atol=ATOL)


def _gqa_causality(sub, recorded):
    case = recorded["gqa"][1]
    module = _gqa(sub, case)
    cos, sin = sub.compute_rope_params(4, context_length=10)
    return causal_probe(lambda x: module(x, _causal_mask(x.shape[1]), cos, sin), case["x"], torch.randn)


@grouped_query_attention
@split(produce=_gqa_causality)
def test_gqa_is_causal(outputs, recorded):
    expect_causal(outputs, recorded["gqa"][1]["x"].shape[1], "GroupedQueryAttention")


def _gqa_gradients(sub, recorded):
    case = recorded["gqa"][1]
    module = _gqa(sub, case).train()
    cos, sin = sub.compute_rope_params(4, context_length=10)
    return gradient_probe(module, module(case["x"], _causal_mask(6), cos, sin), "GroupedQueryAttention")


@grouped_query_attention
@split(produce=_gqa_gradients)
def test_gqa_gradients_reach_every_projection(outputs, recorded):
    expect_gradients_reach(
        outputs, _listed_then_expected(outputs, recorded["gqa"][1]["state"]), "GroupedQueryAttention"
    )


# ---------------------------------------------------------------- ch08.llama_model


_LLAMA_BLOCK_PARAMETERS = (
    "att.W_query",
    "att.W_key",
    "att.W_value",
    "att.out_proj",
    "ff.fc1",
    "ff.fc2",
    "ff.fc3",
    "norm1",
    "norm2",
)


def llama_parameter_names(n_layers: int) -> list[str]:
    """The names of the parameters of a Llama3Model with n_layers blocks."""
    blocks = (f"trf_blocks.{i}.{name}.weight" for i in range(n_layers) for name in _LLAMA_BLOCK_PARAMETERS)
    return ["tok_emb.weight", *blocks, "final_norm.weight", "out_head.weight"]


def _a_few(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def expect_llama_parameter_names(names, expected, what: str = "Llama3Model") -> None:
    """`names` (the submission's parameter names, or a dict by them) are those of `expected`; a mismatch
    names only the missing and the unexpected ones."""
    expect(isinstance(names, (dict, list)), f"{what}: expected its parameter names")
    names, expected = list(names), list(expected)
    missing = [name for name in expected if name not in names]
    extra = [name for name in names if name not in expected]
    problems = []
    if missing:
        problems.append(f"has no parameter{'s' if len(missing) > 1 else ''} named {_a_few(missing)}")
    if extra:
        problems.append(
            f"has {'unexpected parameters' if len(extra) > 1 else 'an unexpected parameter'} {_a_few(extra)}"
        )
    if problems:
        fail(f"{what} {' and '.join(problems)}")


def load_llama(model, state: dict, what: str = "Llama3Model"):
    """Produce: `state` copied into `model` (a Llama3Model) by name, once its names are checked."""
    expect_llama_parameter_names(parameter_shapes(model, what), state, what)
    return load_parameters(model, state, what)


def _llama(sub, state: dict, cfg: dict = SMALL_LLAMA):
    return load_llama(sub.Llama3Model(dict(cfg)), state).eval()


def _llama_shapes(sub):
    return parameter_shapes(sub.Llama3Model(dict(SMALL_LLAMA)), "Llama3Model")


@llama_model
@split(produce=_llama_shapes)
def test_llama_parameters_use_the_chapter_names(outputs, recorded):
    state = recorded["llama"]["state"]
    expect_llama_parameter_names(outputs, state)
    expect_parameter_shapes(outputs, state, "Llama3Model")


def _llama_cfg_and_tables(sub):
    """Whether model.cfg is the configuration the model was built with; its cos and sin; whether each
    of them is in its state dict."""
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    state_dict = model.state_dict()
    return {
        "cfg_is_the_configuration": bool(getattr(model, "cfg", None) == SMALL_LLAMA),
        "tables": {name: getattr(model, name, None) for name in ("cos", "sin")},
        "in_state_dict": {name: name in state_dict for name in ("cos", "sin")},
    }


@llama_model
@split(produce=_llama_cfg_and_tables)
def test_llama_keeps_cfg_and_rope_tables_out_of_the_state_dict(outputs):
    expect(outputs["cfg_is_the_configuration"] is True, "Llama3Model should keep its configuration as model.cfg")
    for name in ("cos", "sin"):
        expect_tensor(outputs["tables"][name], f"Llama3Model.{name} (the RoPE table)", shape=(24, 4))
        expect(
            outputs["in_state_dict"][name] is False,
            f"Llama3Model.{name} is in the state dict: register it with "
            "persistent=False, so that checkpoints hold parameters only",
        )


_ROPE_SCALINGS = (None, LLAMA31_SCALING)


def _llama_tables_and_computed_ones(sub):
    """For each of _ROPE_SCALINGS: the model's cos and sin, and compute_rope_params' tables for its
    configuration, for its configuration with the default base, and without the scaling."""
    base, length = SMALL_LLAMA["rope_base"], SMALL_LLAMA["context_length"]
    produced = []
    for scaling in _ROPE_SCALINGS:
        scaling = None if scaling is None else dict(scaling)
        model = sub.Llama3Model({**SMALL_LLAMA, "rope_freq": scaling})
        produced.append(
            {
                "model": {"cos": model.cos, "sin": model.sin},
                "configured": _tables(sub.compute_rope_params(4, base, length, scaling)),
                "default_base_cos": sub.compute_rope_params(4, context_length=length, freq_config=scaling)[0],
                "unscaled_cos": sub.compute_rope_params(4, base, length)[0],
            }
        )
    return produced


@llama_model
@split(produce=_llama_tables_and_computed_ones)
def test_llama_rope_tables_follow_the_configuration(outputs):
    expect_list(outputs, len(_ROPE_SCALINGS), "the Llama3Model tables")
    for scaling, produced in zip(_ROPE_SCALINGS, outputs, strict=True):
        cos, sin = produced["model"]["cos"], produced["model"]["sin"]
        expected_cos, expected_sin = produced["configured"]["cos"], produced["configured"]["sin"]
        if torch.allclose(cos, expected_cos) and torch.allclose(sin, expected_sin):
            continue
        which = "with cfg['rope_freq']" if scaling else "without scaling"
        if torch.allclose(cos, produced["default_base_cos"]):
            fail(f"Llama3Model.cos ({which}) uses compute_rope_params' default base: pass cfg['rope_base']")
        if torch.allclose(cos, produced["unscaled_cos"]):
            fail("Llama3Model.cos ignores cfg['rope_freq']: pass it to compute_rope_params as freq_config")
        expect_close(
            cos,
            expected_cos,
            f"Llama3Model.cos ({which}) next to compute_rope_params(head_dim=4, "
            "cfg['rope_base'], cfg['context_length'], cfg['rope_freq'])",
            atol=1e-6,
        )
        expect_close(sin, expected_sin, f"Llama3Model.sin ({which})", atol=1e-6)


def _block_input() -> torch.Tensor:
    """(2, 5, 24)"""
    return torch.randn(2, 5, 24, generator=torch.Generator().manual_seed(10))


# (name, what went wrong) of the blocks that are easy to get wrong; `_block_and_its_parts` puts each together.
_BLOCK_MISTAKES = (
    (
        "post_norm",
        "normalises after the residual sums (post-norm); Llama normalises each sublayer's input: "
        "x + att(norm1(x)), then x + ff(norm2(x))",
    ),
    ("norms_swapped", "uses norm2 before the attention and norm1 before the feed-forward"),
    ("no_attention_residual", "has no residual connection around the attention"),
    ("no_feed_forward_residual", "has no residual connection around the feed-forward"),
    ("normed_residual", "adds the normalised input to the attention's output: the residual is x itself"),
    (
        "side_by_side",
        "runs the attention and the feed-forward side by side on x; the feed-forward takes the attention's result",
    ),
    (
        "residual_from_before_attention",
        "adds the feed-forward's output to x from before the attention: the second residual starts from "
        "x + att(norm1(x))",
    ),
)


def _block_and_its_parts(sub):
    """A TransformerBlock with random weights on `_block_input`: its output, its own att, ff, norm1 and
    norm2 put together as a pre-norm residual block, and as each of _BLOCK_MISTAKES. Each (2, 5, 24)."""
    block = randomised(sub.TransformerBlock(dict(SMALL_LLAMA)), seed=6).eval()
    x = _block_input()
    mask, (cos, sin) = _causal_mask(5), sub.compute_rope_params(4, context_length=8)
    actual = _no_grad(block, x, mask, cos, sin)
    expect_tensor(actual, "TransformerBlock output", shape=(2, 5, 24))

    def att(h):
        return block.att(h, mask, cos, sin)

    with torch.no_grad():
        normed = block.norm1(x)
        after_att = att(normed)
        h = x + after_att
        post_norm, swapped = block.norm1(x + att(x)), x + att(block.norm2(x))
        mistakes = {
            "post_norm": block.norm2(post_norm + block.ff(post_norm)),
            "norms_swapped": swapped + block.ff(block.norm1(swapped)),
            "no_attention_residual": after_att + block.ff(block.norm2(after_att)),
            "no_feed_forward_residual": block.ff(block.norm2(x + after_att)),
            "normed_residual": (normed + att(normed)) + block.ff(block.norm2(normed + att(normed))),
            "side_by_side": x + after_att + block.ff(block.norm2(x)),
            "residual_from_before_attention": x + block.ff(block.norm2(x + after_att)),
        }
        return {"out": actual, "pre_norm": h + block.ff(block.norm2(h)), "mistakes": mistakes}


@llama_model
@split(produce=_block_and_its_parts)
def test_transformer_block_is_pre_norm_residual(outputs):
    actual = outputs["out"]
    expect_tensor(actual, "TransformerBlock output", shape=(2, 5, 24))
    expect_close_or_name_the_mistake(
        actual,
        outputs["pre_norm"],
        "TransformerBlock output next to x + att(norm1(x)), then + ff(norm2(...)) of its own att, ff, norm1 and norm2",
        "TransformerBlock",
        ((mistake, outputs["mistakes"][name]) for name, mistake in _BLOCK_MISTAKES),
    )


# (name, what went wrong) of the models that are easy to get wrong; `_llama_and_its_parts` puts each together.
_LLAMA_MISTAKES = (
    ("no_final_norm", "skips final_norm before out_head"),
    (
        "no_mask",
        "lets each token see the tokens after it: the mask is True above the diagonal, where a key is hidden",
    ),
    ("each_block_from_embeddings", "gives every block the embeddings instead of the previous block's output"),
)


def _llama_and_its_parts(sub, recorded):
    """The model with the recorded parameters on the recorded 2x9 tokens: its logits, its own tok_emb,
    blocks (with model.cos and model.sin), final_norm and out_head put together in order, and as each
    of _LLAMA_MISTAKES. Each (2, 9, 37)."""
    model = _llama(sub, recorded["llama"]["state"])
    tokens = recorded["llama"]["tokens"][0]
    actual = _no_grad(model, tokens)
    expect_tensor(actual, "Llama3Model logits on a 2x9 input", shape=(2, 9, 37))

    def blocks(x, mask, each_from_embeddings=False):
        out = x
        for block in model.trf_blocks:
            out = block(x if each_from_embeddings else out, mask, model.cos, model.sin)
        return out

    with torch.no_grad():
        x, causal = model.tok_emb(tokens), _causal_mask(9)
        mistakes = {
            "no_final_norm": model.out_head(blocks(x, causal)),
            "no_mask": model.out_head(model.final_norm(blocks(x, torch.zeros(9, 9, dtype=torch.bool)))),
            "each_block_from_embeddings": model.out_head(
                model.final_norm(blocks(x, causal, each_from_embeddings=True))
            ),
        }
        return {"logits": actual, "in_order": model.out_head(model.final_norm(blocks(x, causal))), "mistakes": mistakes}


@llama_model
@split(produce=_llama_and_its_parts)
def test_llama_forward_runs_its_parts_in_order(outputs):
    actual = outputs["logits"]
    expect_tensor(actual, "Llama3Model logits on a 2x9 input", shape=(2, 9, 37))
    if actual.isnan().any():
        row = int(actual.isnan().nonzero()[0][1])
        fail(
            f"Llama3Model gives nan logits (first at position {row}): a token whose keys are all masked gets nan, which "
            "spreads; the mask is True only above the diagonal, so each token sees itself and the tokens before it"
        )
    expect_close_or_name_the_mistake(
        actual,
        outputs["in_order"],
        "Llama3Model logits next to out_head(final_norm(the blocks on tok_emb(tokens), "
        "with a causal mask and model.cos, model.sin))",
        "Llama3Model",
        ((mistake, outputs["mistakes"][name]) for name, mistake in _LLAMA_MISTAKES),
    )


def _recorded_logits(recorded) -> dict:
    """The recorded tokens and logits as a `recorded_outputs` case."""
    return {"inputs": recorded["llama"]["tokens"], "outputs": recorded["llama"]["logits"]}


def _llama_recorded_outputs(sub, recorded):
    return recorded_outputs(_llama(sub, recorded["llama"]["state"]), _recorded_logits(recorded))


@llama_model
@split(produce=_llama_recorded_outputs)
def test_llama_matches_recorded(outputs, recorded):
    expect_recorded_outputs(outputs, _recorded_logits(recorded), "Llama3Model logits", ATOL)


def _scaled_llama_logits(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["scaled_state"], {**SMALL_LLAMA, "rope_freq": dict(LLAMA31_SCALING)})
    return _no_grad(model, case["tokens"][1])


@llama_model
@split(produce=_scaled_llama_logits)
def test_llama_uses_the_rope_frequency_scaling(outputs, recorded):
    expect_close(
        outputs,
        recorded["llama"]["scaled_logits"],
        "Llama3Model logits with cfg['rope_freq'] (Llama 3.1's scaling)",
        atol=ATOL,
    )


def _llama_causality(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"])
    return causal_probe(model, recorded["llama"]["tokens"][0], lambda shape: torch.randint(0, 37, shape))


@llama_model
@split(produce=_llama_causality)
def test_llama_is_causal(outputs, recorded):
    expect_causal(outputs, recorded["llama"]["tokens"][0].shape[1], "Llama3Model")


def _llama_gradients(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"]).train()
    return gradient_probe(model, model(recorded["llama"]["tokens"][0]), "Llama3Model")


@llama_model
@split(produce=_llama_gradients)
def test_llama_gradients_reach_every_parameter(outputs, recorded):
    expect_gradients_reach(outputs, _listed_then_expected(outputs, recorded["llama"]["state"]), "Llama3Model")


def _llama32_1b_parameters(sub):
    """The shape and dtype of each parameter of a Llama3Model with Llama 3.2 1B's configuration (never initialised)."""
    with skipped_init():
        model = sub.Llama3Model(dict(LLAMA32_1B))
    return {name: {"shape": list(p.shape), "dtype": str(p.dtype)} for name, p in model.named_parameters()}


@llama_model
@split(produce=_llama32_1b_parameters)
def test_llama32_1b_configuration_parameter_count(outputs):
    count = sum(math.prod(param["shape"]) for param in outputs.values())
    expect(
        count == LLAMA32_1B_PARAMETERS,
        f"Llama3Model with Llama 3.2 1B's configuration has {count:,} parameters; "
        f"expected {LLAMA32_1B_PARAMETERS:,} (with its own out_head)",
    )
    for name, param in outputs.items():
        expect(
            len(param["shape"]) < 2 or param["dtype"] == str(torch.bfloat16),
            f"with cfg['dtype'] bfloat16 the weight matrices should be bfloat16; {name} is {param['dtype']}",
        )


# ---------------------------------------------------------------- ch08.kv_cache

# The sizes of the chunks the recorded 1x16 tokens are fed to forward_with_cache in.
_CHUNKS = (5, 1, 1, 4, 1, 4)


def _expect_chunk_agrees(chunk: dict, full, start: int, size: int) -> None:
    """One chunk of `_cached_chunks` (tokens start..start + size - 1): the cache counts the tokens fed so
    far, and the logits are the model's on the whole sequence there (`full`: (1, 16, 37))."""
    end = start + size
    expect(
        chunk["tokens_seen"] == end,
        f"KVCache.tokens_seen() is {chunk['tokens_seen']} after forward_with_cache on "
        f"tokens 0..{end - 1}; it should be {end}, the position of the next token",
    )
    expect_tensor(chunk["logits"], f"forward_with_cache logits for tokens {start}..{end - 1}", shape=(1, size, 37))
    where = "the prompt" if start == 0 else f"tokens {start}..{end - 1}, fed after {start} cached tokens"
    expect_close(chunk["logits"], full[:, start:end], f"forward_with_cache logits for {where}", atol=ATOL)


def _cached_chunks(sub, recorded):
    """The model's logits on the recorded 1x16 tokens, and for each chunk of _CHUNKS fed in turn to
    forward_with_cache with one cache: its logits and the cache's tokens_seen() after it.

    A chunk that does not agree fails here, before the next one runs on a cache it may have broken."""
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    tokens = case["tokens"][1]
    full = _no_grad(model, tokens)
    cache = sub.KVCache(SMALL_LLAMA["n_layers"])
    chunks, start = [], 0
    for size in _CHUNKS:
        logits = _no_grad(sub.forward_with_cache, model, tokens[:, start : start + size], cache)
        chunks.append({"logits": logits, "tokens_seen": cache.tokens_seen()})
        _expect_chunk_agrees(chunks[-1], full, start, size)
        start += size
    return {"full": full, "chunks": chunks}


@kv_cache
@split(produce=_cached_chunks)
def test_cached_forward_in_chunks_matches_the_full_forward(outputs):
    expect_list(outputs["chunks"], len(_CHUNKS), "the forward_with_cache results")
    start = 0
    for size, chunk in zip(_CHUNKS, outputs["chunks"], strict=True):
        _expect_chunk_agrees(chunk, outputs["full"], start, size)
        start += size


def _generation(sub, model, prompt: torch.Tensor, steps: int) -> dict:
    """generate_text_simple_cached(model, prompt, steps) as {"tokens": ..., "error": None}, or the error it raised."""
    try:
        return {"tokens": sub.generate_text_simple_cached(model, prompt, steps), "error": None}
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - compare tells what raised it
        return {"tokens": None, "error": f"{type(exc).__name__}: {exc}"[:300]}


def generations_in_turn(sub, new_model, runs) -> list[dict]:
    """Produce: for each (prompt, steps) of `runs`, in turn, with one model from `new_model()`, the tokens
    generate_text_simple_cached gives with the cache (`_generation`), and for every prompt after the first
    the same generation on a model of its own: what an earlier call left behind shows as a difference.

    Every model stays alive to the end, so that none shares an id (a cache kept by id) with an earlier one."""
    models = [new_model()]
    produced = []
    for i, (prompt, steps) in enumerate(runs):
        one = {"in_turn": _generation(sub, models[0], prompt, steps)}
        if i:
            models.append(new_model())
            one["alone"] = _generation(sub, models[-1], prompt, steps)
        produced.append(one)
    return produced


def _generated(one, tokens: torch.Tensor) -> bool:
    got = one.get("tokens") if isinstance(one, dict) else None
    return isinstance(got, torch.Tensor) and got.shape == tokens.shape and torch.equal(got, tokens)


def expect_generations_in_turn(outputs, prompts: list, expected: list, named: list[str]) -> None:
    """Compare: `outputs` (`generations_in_turn`) are the `expected` tokens for each of `prompts`, called
    `named` in messages. A prompt that goes wrong after earlier generations with the same model, while
    a model of its own gets it right or the same prompt came out right before, names the cache left behind."""
    expect_list(outputs, len(prompts), "the generate_text_simple_cached results")
    for i, (prompt, produced, tokens, name) in enumerate(zip(prompts, outputs, expected, named, strict=True)):
        expect(isinstance(produced, dict), "the generate_text_simple_cached results should be dicts")
        in_turn = produced.get("in_turn")
        if _generated(in_turn, tokens):
            continue
        error = in_turn.get("error") if isinstance(in_turn, dict) else None
        alone = i > 0 and _generated(produced.get("alone"), tokens)
        again = any(torch.equal(prompts[j], prompt) for j in range(i) if prompts[j].shape == prompt.shape)
        if alone or again:
            how = f"raised {error}" if error else "gave other tokens"
            than = "a new model generates from it right" if alone else "the same prompt came out right the first time"
            fail(
                f"generate_text_simple_cached {how} on {name}, after earlier generations with the same model, "
                f"though {than}: something of an earlier call is still there. A cache must not outlive its call: "
                "make a new KVCache in each call"
            )
        if error:
            fail(f"generate_text_simple_cached raised {error} on {name}")
        got = in_turn.get("tokens") if isinstance(in_turn, dict) else None
        expect_equal_tensor(got, tokens, f"the tokens generated with the cache from {name}")


def _prompts_in_turn(recorded) -> list[torch.Tensor]:
    """Prompts generated from one after the other with one model: the same one twice, then prompts of
    another batch size and lengths (a cache left behind shows on the repeated prompt before a batch size
    it cannot take)."""
    case = recorded["llama"]
    return [case["prompts"], case["prompts"], case["tokens"][1][:, :3], case["prompts"][1:]]


def _generations_in_turn(sub, recorded):
    """`generations_in_turn` of 6 tokens from each of `_prompts_in_turn`, and the tokens generated from
    each without the cache."""
    state, prompts = recorded["llama"]["state"], _prompts_in_turn(recorded)
    produced = generations_in_turn(sub, lambda: _llama(sub, state), [(prompt, 6) for prompt in prompts])
    model = _llama(sub, state)
    uncached = [sub.generate_text_simple_cached(model, prompt, 6, use_cache=False) for prompt in prompts]
    return {"in_turn": produced, "uncached": uncached}


def _prompt_names(prompts: list[torch.Tensor]) -> list[str]:
    return [
        f"the {tuple(prompt.shape)} prompt again"
        if any(torch.equal(prompt, earlier) for earlier in prompts[:i] if earlier.shape == prompt.shape)
        else f"a {tuple(prompt.shape)} prompt"
        for i, prompt in enumerate(prompts)
    ]


@kv_cache
@split(produce=_generations_in_turn)
def test_each_generation_starts_with_an_empty_cache(outputs, recorded):
    prompts = _prompts_in_turn(recorded)
    uncached = outputs["uncached"]
    expect_list(uncached, len(prompts), "the generate_text_simple_cached(use_cache=False) results")
    for prompt, tokens in zip(prompts, uncached, strict=True):
        expect_tensor(tokens, f"generate_text_simple_cached(use_cache=False) on a {tuple(prompt.shape)} prompt")
    expect_generations_in_turn(outputs["in_turn"], prompts, uncached, _prompt_names(prompts))


def _generated_with_and_without_cache(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    return {
        "cached": sub.generate_text_simple_cached(model, case["prompts"], 8),
        "uncached": sub.generate_text_simple_cached(model, case["prompts"], 8, use_cache=False),
    }


@kv_cache
@split(produce=_generated_with_and_without_cache)
def test_cached_generation_matches_uncached(outputs, recorded):
    expect_equal_tensor(
        outputs["uncached"], recorded["llama"]["generated"], "generate_text_simple_cached(use_cache=False) tokens"
    )
    expect_equal_tensor(
        outputs["cached"], outputs["uncached"], "the tokens generated with the cache (next to those without it)"
    )


def _generated_from_the_last_tokens(sub, recorded):
    """6 tokens generated with context_size=3 and use_cache=False, and the model's own greedy choices
    from the last 3 tokens, appended one at a time to the prompts."""
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    ids = case["prompts"]
    with torch.no_grad():
        for _ in range(6):
            ids = torch.cat([ids, model(ids[:, -3:])[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    actual = sub.generate_text_simple_cached(model, case["prompts"], 6, context_size=3, use_cache=False)
    return {"generated": actual, "from_the_last_3": ids}


@kv_cache
@split(produce=_generated_from_the_last_tokens)
def test_uncached_generation_sees_the_last_context_size_tokens(outputs):
    actual = outputs["generated"]
    expect_tensor(actual, "generate_text_simple_cached(context_size=3, use_cache=False)")
    expect(
        actual.dim() == 2 and actual.shape[1] >= 6,
        "generate_text_simple_cached(..., 6, context_size=3, "
        f"use_cache=False) returned shape {tuple(actual.shape)}: expected (batch, at least the 6 new tokens)",
    )
    expect_equal_tensor(
        actual[:, -6:],
        outputs["from_the_last_3"][:, -6:],
        "the 6 tokens generated with context_size=3 and use_cache=False "
        "(each from the model run on the last 3 tokens only)",
    )


_USE_CACHE = (True, False)


def _modes_seen_in_generation(sub, recorded):
    """For each use_cache of _USE_CACHE, in turn, with the model put in train() mode first: (training,
    gradients on) at every call of any of the model's modules while generate_text_simple_cached runs."""
    model = _llama(sub, recorded["llama"]["state"]).train()
    seen = []

    def record(module, args):
        seen.append((module.training, torch.is_grad_enabled()))

    hooks = [module.register_forward_pre_hook(record) for module in model.modules()]
    produced = []
    try:
        for use_cache in _USE_CACHE:
            seen.clear()
            sub.generate_text_simple_cached(model, recorded["llama"]["prompts"], 2, use_cache=use_cache)
            produced.append(list(seen))
    finally:
        for hook in hooks:
            hook.remove()
    return produced


@kv_cache
@split(produce=_modes_seen_in_generation)
def test_generation_runs_in_eval_mode_without_gradients(outputs):
    expect_list(outputs, len(_USE_CACHE), "the generate_text_simple_cached results")
    for use_cache, seen in zip(_USE_CACHE, outputs, strict=True):
        expect(
            isinstance(seen, list) and len(seen) > 0,
            f"generate_text_simple_cached(use_cache={use_cache}) never called the model",
        )
        expect(
            all(training is False for training, _ in seen),
            f"generate_text_simple_cached(use_cache={use_cache}) "
            "ran the model in training mode: call model.eval() first",
        )
        expect(
            all(grad is False for _, grad in seen),
            f"generate_text_simple_cached(use_cache={use_cache}) builds "
            "gradient graphs: generate under torch.no_grad()",
        )


def _eos_case(recorded) -> tuple[torch.Tensor, int, torch.Tensor]:
    """(the first recorded prompt, an eos_id it generates, the tokens generated up to its first eos_id)."""
    prompt, generated = recorded["llama"]["prompts"][:1], recorded["llama"]["generated"][:1]
    eos_id = generated[0, 5 + 3].item()
    stop = next(i for i in range(5, generated.shape[1]) if generated[0, i] == eos_id)
    return prompt, eos_id, generated[:, :stop]


def swapped_tokens(tokens: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """`tokens` with the ids a and b swapped."""
    swapped = tokens.clone()
    swapped[tokens == a], swapped[tokens == b] = b, a
    return swapped


def with_tokens_swapped(state: dict, a: int, b: int) -> dict:
    """A Llama3Model's parameters with the tokens a and b swapped in the vocabulary (their rows of tok_emb and
    out_head): the model then generates the tokens the original generates, with a and b swapped."""
    swapped = dict(state)
    for name in ("tok_emb.weight", "out_head.weight"):
        rows = torch.arange(state[name].shape[0])
        swapped[name] = state[name][swapped_tokens(rows, a, b)]
    return swapped


def _generated_up_to_eos(sub, recorded):
    """The tokens generated with the recorded eos_id, then with the model's tokens 0 and eos_id swapped, with eos_id=0."""
    prompt, eos_id, _ = _eos_case(recorded)
    state = recorded["llama"]["state"]
    swapped = _llama(sub, with_tokens_swapped(state, 0, eos_id))
    return [
        sub.generate_text_simple_cached(_llama(sub, state), prompt, 8, eos_id=eos_id),
        sub.generate_text_simple_cached(swapped, swapped_tokens(prompt, 0, eos_id), 8, eos_id=0),
    ]


@kv_cache
@split(produce=_generated_up_to_eos)
def test_cached_generation_stops_before_eos(outputs, recorded):
    _, eos_id, expected = _eos_case(recorded)
    expect_list(outputs, 2, "the generate_text_simple_cached results")
    expect_equal_tensor(outputs[0], expected, f"tokens generated with eos_id={eos_id} (stop before appending it)")
    expect_eos_zero_stops(outputs[1], swapped_tokens(expected, 0, eos_id), "generate_text_simple_cached")


def expect_eos_zero_stops(actual, expected: torch.Tensor, what: str) -> None:
    """Compare: `actual`, tokens generated with eos_id=0 from a model that generates token 0, are `expected`."""
    expect_tensor(actual, "tokens generated with eos_id=0")
    if (
        actual.dim() == 2
        and actual.shape[1] > expected.shape[1]
        and torch.equal(actual[:, : expected.shape[1]], expected)
    ):
        fail(
            f"{what} went on past a generated 0 with eos_id=0: token 0 is an id like any other, so test "
            "eos_id is not None rather than the truth of eos_id"
        )
    expect_equal_tensor(actual, expected, "tokens generated with eos_id=0 (stop before appending it)")


# ---------------------------------------------------------------- ch08.load_llama_weights

# (Hugging Face name, the chapter's name) of parameters the loader must not mix up.
_LOADED_WHERE = (
    ("model.layers.1.self_attn.q_proj.weight", "trf_blocks.1.att.W_query.weight"),
    ("model.layers.1.self_attn.o_proj.weight", "trf_blocks.1.att.out_proj.weight"),
    ("model.layers.1.mlp.gate_proj.weight", "trf_blocks.1.ff.fc1.weight"),
    ("model.layers.1.mlp.up_proj.weight", "trf_blocks.1.ff.fc2.weight"),
    ("model.layers.0.input_layernorm.weight", "trf_blocks.0.norm1.weight"),
    ("model.layers.0.post_attention_layernorm.weight", "trf_blocks.0.norm2.weight"),
    ("model.layers.0.self_attn.k_proj.weight", "trf_blocks.0.att.W_key.weight"),
    ("model.layers.0.self_attn.v_proj.weight", "trf_blocks.0.att.W_value.weight"),
    ("lm_head.weight", "out_head.weight"),
)


def _loaded_llama(sub, params: dict):
    """A Llama3Model of SMALL_LLAMA's configuration after load_weights_into_llama(model, cfg, params)."""
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    return model


def _loaded_parameters(sub, recorded):
    """Every parameter of the model after loading the Hugging Face tensors, by name (tied ones under each name)."""
    model = _loaded_llama(sub, recorded["hugging_face"]["params"])
    return dict(model.named_parameters(remove_duplicate=False))


def _is_one_of(tensor, tensors) -> bool:
    return isinstance(tensor, torch.Tensor) and any(t.shape == tensor.shape and torch.equal(t, tensor) for t in tensors)


@load_llama_weights
@split(produce=_loaded_parameters)
def test_hugging_face_names_go_to_the_right_parameters(outputs, recorded):
    params = recorded["hugging_face"]["params"]
    for name in _listed_then_expected(outputs, recorded["llama"]["state"]):
        expect(
            _is_one_of(outputs.get(name), params.values()),
            f"Llama3Model.{name} holds none of the Hugging Face tensors after loading",
        )
    for hf_name, ours in _LOADED_WHERE:
        expect(_is_one_of(outputs.get(ours), [params[hf_name]]), f"{ours} should hold {hf_name}")


def _logits_after_loading(sub, recorded):
    case = recorded["hugging_face"]
    return _no_grad(_loaded_llama(sub, case["params"]).eval(), case["tokens"])


@load_llama_weights
@split(produce=_logits_after_loading)
def test_loaded_model_matches_hugging_face_logits(outputs, recorded):
    expect_close(
        outputs,
        recorded["hugging_face"]["logits"],
        "logits after loading, next to those of Hugging Face's LlamaForCausalLM",
        atol=1e-4,
    )


def _without_lm_head(recorded) -> dict:
    return {name: t for name, t in recorded["hugging_face"]["params"].items() if name != "lm_head.weight"}


def _output_head_without_lm_head(sub, recorded):
    return _loaded_llama(sub, _without_lm_head(recorded)).out_head.weight


@load_llama_weights
@split(produce=_output_head_without_lm_head)
def test_output_head_is_tied_when_lm_head_is_absent(outputs, recorded):
    expect(
        _is_one_of(outputs, [recorded["hugging_face"]["params"]["model.embed_tokens.weight"]]),
        "without lm_head.weight, out_head.weight should be the token embedding (tied weights)",
    )


# (Hugging Face name, the chapter's name, the wrong shape given, what is wrong with it): W_key is (8, 24).
_WRONG_SHAPES = (
    ("model.layers.0.self_attn.k_proj.weight", "trf_blocks.0.att.W_key.weight", (1, 24), "one row"),
    ("model.layers.0.self_attn.k_proj.weight", "trf_blocks.0.att.W_key.weight", (24, 8), "transposed"),
)


def loading_errors(sub, new_model, cfg: dict, params: dict, wrong: list) -> list[dict]:
    """Produce: for each (Hugging Face name, the chapter's name, tensor) of `wrong`, load_weights_into_llama
    on a model from `new_model()` with that tensor in `params` instead: what it raised (its classes, own
    first, and its message), or None and the shape of the chapter's parameter after loading."""
    produced = []
    for theirs, ours, tensor in wrong:
        model = new_model()
        try:
            sub.load_weights_into_llama(model, dict(cfg), {**params, theirs: tensor})
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - compare tells what raised it
            produced.append({"raised": _exception_classes(exc), "message": str(exc)[:500], "loaded": None})
            continue
        loaded = dict(model.named_parameters()).get(ours)
        produced.append({"raised": None, "message": "", "loaded": None if loaded is None else list(loaded.shape)})
    return produced


def expect_wrong_shape_rejected(produced, names: tuple[str, str], tensor: str, parameter: str, shape) -> None:
    """Compare: `produced` (one item of `loading_errors`) is a ValueError whose message names the tensor by
    one of `names` (Hugging Face's or the chapter's); `tensor` and `parameter` say what was loaded into
    what, `shape` is the parameter's."""
    expect(isinstance(produced, dict), "the load_weights_into_llama results should be dicts")
    raised = produced.get("raised")
    if raised is None:
        loaded = produced.get("loaded")
        how = ""
        if isinstance(loaded, list) and tuple(loaded) == tuple(shape):
            how = " (copied in by broadcasting, so the model silently holds other weights)"
        elif isinstance(loaded, list):
            how = " (the model's parameter now has the tensor's wrong shape)"
        fail(
            f"load_weights_into_llama accepted {tensor} for {parameter}{how}: compare the shapes and raise a "
            "ValueError that names the tensor"
        )
    if not (isinstance(raised, list) and "ValueError" in raised):
        got = raised[0] if isinstance(raised, list) and raised else raised
        fail(
            f"load_weights_into_llama raised {got} for {tensor} for {parameter}: compare the shapes yourself "
            "and raise a ValueError that names the tensor, as the exercise says"
        )
    message = produced.get("message")
    expect(
        isinstance(message, str) and any(name in message for name in names),
        f"the ValueError for {tensor} for {parameter} does not name the tensor: put its name in the message",
    )


def _wrong_shape_errors(sub, recorded):
    params = recorded["hugging_face"]["params"]
    wrong = [(theirs, ours, torch.zeros(shape)) for theirs, ours, shape, _ in _WRONG_SHAPES]
    return loading_errors(sub, lambda: sub.Llama3Model(dict(SMALL_LLAMA)), SMALL_LLAMA, params, wrong)


@load_llama_weights
@split(produce=_wrong_shape_errors)
def test_loading_rejects_a_tensor_of_the_wrong_shape(outputs):
    expect_list(outputs, len(_WRONG_SHAPES), "the load_weights_into_llama results")
    for (theirs, ours, shape, problem), produced in zip(_WRONG_SHAPES, outputs, strict=True):
        expect_wrong_shape_rejected(
            produced, (theirs, ours), f"a {shape} {theirs} ({problem})", "the (8, 24) W_key", (8, 24)
        )


# ---------------------------------------------------------------- ch08.llama3_tokenizer


@pytest.fixture
def tokenizer(sub, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken")
    )  # tiktoken caches the ranks file: not in the course's cache
    return sub.Tokenizer(write_ranks(tmp_path / "tokenizer.model"))


def _special_tokens(tokenizer):
    """Tokenizer.special_tokens, or the name of its type when it is no dict."""
    special = getattr(tokenizer, "special_tokens", None)
    return special if isinstance(special, dict) else type(special).__name__


@llama3_tokenizer
@split(produce=_special_tokens)
def test_special_tokens_follow_the_ranks(outputs):
    n = len(ranks())
    special = outputs
    expect(isinstance(special, dict), "Tokenizer.special_tokens should be a dict from special token to id")
    expect(len(special) == 256, f"Llama 3 has 256 special tokens; Tokenizer.special_tokens has {len(special)}")
    for name, offset in (
        ("<|begin_of_text|>", 0),
        ("<|end_of_text|>", 1),
        ("<|start_header_id|>", 6),
        ("<|end_header_id|>", 7),
        ("<|eot_id|>", 9),
        ("<|reserved_special_token_5|>", 10),
    ):
        expect(
            special.get(name) == n + offset,
            f"{name} should have id {n + offset} (the ranks file has {n} tokens); got {special.get(name)}",
        )


def _recorded_texts_encoded_and_decoded(tokenizer, recorded):
    case = recorded["tokenizer"]
    return [
        {"encoded": tokenizer.encode(text), "decoded": tokenizer.decode(ids)}
        for text, ids in zip(case["texts"], case["ids"], strict=True)
    ]


@llama3_tokenizer
@split(produce=_recorded_texts_encoded_and_decoded)
def test_encode_matches_recorded(outputs, recorded):
    case = recorded["tokenizer"]
    expect_list(outputs, len(case["texts"]), "the encode and decode results")
    for text, ids, produced in zip(case["texts"], case["ids"], outputs, strict=True):
        expect_sequence_equal(produced["encoded"], ids, f"the ids of {text!r}")
        expect_text_equal(produced["decoded"], text, f"decode of the ids of {text!r}")


def _encoded_with_begin_and_end(tokenizer):
    return {
        "plain": tokenizer.encode("the theme"),
        "begin": tokenizer.special_tokens["<|begin_of_text|>"],
        "end": tokenizer.special_tokens["<|end_of_text|>"],
        "bos": tokenizer.encode("the theme", bos=True),
        "eos": tokenizer.encode("the theme", eos=True),
    }


@llama3_tokenizer
@split(produce=_encoded_with_begin_and_end)
def test_encode_adds_begin_and_end_of_text(outputs):
    plain, begin, end = outputs["plain"], outputs["begin"], outputs["end"]
    expect_sequence_equal(outputs["bos"], [begin, *plain], "encode('the theme', bos=True)")
    expect_sequence_equal(outputs["eos"], [*plain, end], "encode('the theme', eos=True)")


def _encoded_with_and_without_allowed_special(tokenizer):
    """'is<|eot_id|>it' encoded with <|eot_id|> allowed and without (with the classes of the ValueError
    that raised, if one did), 'is' and 'it' alone, and <|eot_id|>'s id."""
    produced = {
        "eot": tokenizer.special_tokens["<|eot_id|>"],
        "allowed": tokenizer.encode("is<|eot_id|>it", allowed_special={"<|eot_id|>"}),
        "is": tokenizer.encode("is"),
        "it": tokenizer.encode("it"),
    }
    try:
        produced["plain"], produced["plain_raised"] = tokenizer.encode("is<|eot_id|>it"), None
    except ValueError as exc:
        produced["plain"], produced["plain_raised"] = None, _exception_classes(exc)
    return produced


@llama3_tokenizer
@split(produce=_encoded_with_and_without_allowed_special)
def test_special_tokens_only_where_allowed(outputs):
    eot = outputs["eot"]
    expect_sequence_equal(
        outputs["allowed"],
        [*outputs["is"], eot, *outputs["it"]],
        "encode('is<|eot_id|>it', allowed_special={'<|eot_id|>'})",
    )
    plain = outputs["plain"]
    if outputs["plain_raised"] is not None:
        fail(
            "encode('is<|eot_id|>it') raised a ValueError: without allowed_special, a special token written in a text "
            "is encoded as ordinary text (tiktoken's disallowed_special=())"
        )
    expect(
        isinstance(plain, (list, tuple, torch.Tensor)),
        f"encode('is<|eot_id|>it') should return a list of ids; got {type(plain).__name__}",
    )
    expect(
        eot not in plain, "without allowed_special, '<|eot_id|>' written in a text should be encoded as ordinary text"
    )


_CHAT_SPECIALS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")


def _chat_encodings(sub, tokenizer, recorded):
    """ChatFormat's header and message of a user's 'hi', its dialog prompt of the recorded dialog, and
    the tokenizer's ids they are made of."""
    chat = sub.ChatFormat(tokenizer)
    return {
        "header": chat.encode_header({"role": "user", "content": "hi"}),
        "special": {name: tokenizer.special_tokens[name] for name in _CHAT_SPECIALS},
        "user": tokenizer.encode("user"),
        "blank_line": tokenizer.encode("\n\n"),
        "message": chat.encode_message({"role": "user", "content": " hi \n"}),
        "hi": tokenizer.encode("hi"),
        "dialog": chat.encode_dialog_prompt(recorded["tokenizer"]["dialog"]),
    }


@llama3_tokenizer
@split(produce=_chat_encodings)
def test_chat_format_dialog_prompt_matches_recorded(outputs, recorded):
    special, header = outputs["special"], outputs["header"]
    expect_sequence_equal(
        header,
        [special["<|start_header_id|>"], *outputs["user"], special["<|end_header_id|>"], *outputs["blank_line"]],
        "encode_header of a user message",
    )
    expect_sequence_equal(
        outputs["message"],
        [*header, *outputs["hi"], special["<|eot_id|>"]],
        "encode_message of ' hi \\n' (content stripped, then <|eot_id|>)",
    )
    expect_sequence_equal(
        outputs["dialog"], recorded["tokenizer"]["dialog_ids"], "encode_dialog_prompt of a system and a user message"
    )
