"""Public checks of chapter 8: from GPT to Llama.

RMSNorm, SiLU and attention are compared with PyTorch's own (called by the checks,
never by the exercises); the modules get recorded parameters by name and must
reproduce the reference's recorded outputs; the loader must reproduce the logits
Hugging Face's LlamaForCausalLM computed; cached generation must agree with the
submission's own model run without a cache. Blocks and models are also compared with
their own parts put together, and an output that matches a known mistake (LayerNorm
for RMSNorm, a post-norm block, tiled key/value heads, ...) gets a message naming it.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import layer_norm as torch_layer_norm
from torch.nn.functional import rms_norm as torch_rms_norm
from torch.nn.functional import scaled_dot_product_attention as torch_attention
from torch.nn.functional import silu as torch_silu

from autograder.checks.llama_setups import LLAMA31_SCALING, SMALL_LLAMA, ranks, write_ranks
from autograder.checks.modules import (
    expect_causal,
    expect_gradients_reach,
    expect_parameter_names,
    load_parameters,
    randomised,
)
from autograder.compare import (
    expect,
    expect_close,
    expect_close_or_name_the_mistake,
    expect_equal_tensor,
    expect_sequence_equal,
    expect_tensor,
    expect_text_equal,
    fail,
)
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


# ---------------------------------------------------------------- ch08.rms_norm


def _rms_norm_inputs() -> torch.Tensor:
    """(3, 4, 10) rows of very different sizes, down to a mean square of 1e-6 where eps shows, and
    rows far from zero mean, where subtracting the mean shows."""
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(3, 4, 10, generator=generator) * torch.tensor([5.0, 1.0, 0.1, 0.001]).view(1, 4, 1)
    return x + torch.tensor([2.0, 0.0, 0.5]).view(3, 1, 1)


@rms_norm
def test_rms_norm_has_one_weight_starting_at_ones(sub):
    norm = sub.RMSNorm(10)
    expect_parameter_names(norm, {"weight": torch.ones(10)}, "RMSNorm(10)")
    expect_close(norm.weight, torch.ones(10), "RMSNorm(10).weight at the start", atol=0)


@rms_norm
def test_rms_norm_matches_pytorch(sub):
    x = _rms_norm_inputs()
    weight = torch.linspace(0.5, 2.0, 10)
    for eps in (1e-5, 1e-3):
        norm = sub.RMSNorm(10, eps=eps)
        with torch.no_grad():
            norm.weight.copy_(weight)
        actual = _no_grad(norm, x)
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


@rms_norm
def test_rms_norm_keeps_shape_and_dtype(sub):
    norm = sub.RMSNorm(8)
    for x in (torch.randn(8), torch.randn(2, 3, 5, 8), torch.randn(4, 8, dtype=torch.bfloat16)):
        out = _no_grad(norm, x)
        expect_tensor(
            out, f"RMSNorm(8) on a {x.dtype} input of shape {tuple(x.shape)}", shape=tuple(x.shape), dtype=x.dtype
        )


@rms_norm
def test_rms_norm_gradient_reaches_weight(sub):
    norm = sub.RMSNorm(10)
    expect_gradients_reach(norm, norm(_rms_norm_inputs()), "RMSNorm")


# ---------------------------------------------------------------- ch08.swiglu


def _feed_forward_cfg(**changes) -> dict:
    return {"emb_dim": 6, "hidden_dim": 10, "dtype": None, **changes}


@swiglu
@pytest.mark.forbid("torch.nn.SiLU", "torch.nn.functional.silu")
def test_silu_matches_pytorch(sub):
    x = torch.linspace(-8, 8, 33).view(3, 11)
    expect_close(_no_grad(sub.SiLU(), x), torch_silu(x), "SiLU()(x)", atol=1e-6)


@swiglu
def test_feed_forward_layers(sub):
    cfg = _feed_forward_cfg()
    expected = {"fc1.weight": torch.empty(10, 6), "fc2.weight": torch.empty(10, 6), "fc3.weight": torch.empty(6, 10)}
    expect_parameter_names(sub.FeedForward(cfg), expected, "FeedForward (emb_dim 6, hidden_dim 10)")


@swiglu
def test_feed_forward_is_swiglu(sub):
    module = randomised(sub.FeedForward(_feed_forward_cfg()), seed=2).eval()
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(3))
    fc1, fc2, fc3 = (getattr(module, name).weight.detach() for name in ("fc1", "fc2", "fc3"))
    actual = _no_grad(module, x)
    expect_tensor(actual, "FeedForward output", shape=(2, 5, 6))
    if torch.allclose(actual, (x @ fc1.T * torch_silu(x @ fc2.T)) @ fc3.T, atol=ATOL):
        fail("FeedForward applies SiLU to fc2's output: the gate is silu(fc1(x)), multiplied by fc2(x)")
    expect_close(
        actual,
        (torch_silu(x @ fc1.T) * (x @ fc2.T)) @ fc3.T,
        "FeedForward output (fc3(silu(fc1(x)) * fc2(x)))",
        atol=ATOL,
    )


@swiglu
def test_feed_forward_uses_the_configured_dtype(sub):
    module = sub.FeedForward(_feed_forward_cfg(dtype=torch.bfloat16))
    for name, param in module.named_parameters():
        expect(param.dtype == torch.bfloat16, f"FeedForward with cfg['dtype'] bfloat16 has {name} in {param.dtype}")


@swiglu
def test_feed_forward_gradients_reach_every_layer(sub):
    module = randomised(sub.FeedForward(_feed_forward_cfg()), seed=4)
    expect_gradients_reach(module, module(torch.randn(2, 3, 6)), "FeedForward")


# ---------------------------------------------------------------- ch08.rope


@rope
def test_rope_tables_shape_and_position_zero(sub):
    cos, sin = sub.compute_rope_params(16, theta_base=10_000, context_length=12)
    expect_tensor(cos, "cos of compute_rope_params(16, context_length=12)", shape=(12, 16), dtype=torch.float32)
    expect_tensor(sin, "sin of compute_rope_params(16, context_length=12)", shape=(12, 16), dtype=torch.float32)
    expect_close(cos[0], torch.ones(16), "cos at position 0 (no rotation)", atol=1e-6)
    expect_close(sin[0], torch.zeros(16), "sin at position 0 (no rotation)", atol=1e-6)


@rope
def test_rope_tables_repeat_the_angles_in_both_halves(sub):
    cos, sin = sub.compute_rope_params(16, theta_base=10_000, context_length=12)
    expect(
        torch.allclose(cos[:, :8], cos[:, 8:]) and torch.allclose(sin[:, :8], sin[:, 8:]),
        "the two halves of the cos/sin rows differ: in the rotate-half layout dimension i and i + head_dim // 2 "
        "form a pair and turn by the same angle, so each row is the angles of the head_dim // 2 pairs twice",
    )


@rope
def test_rope_tables_match_recorded(sub, recorded):
    for theta, (cos, sin) in recorded["rope"]["tables"].items():
        actual_cos, actual_sin = sub.compute_rope_params(16, theta_base=theta, context_length=12)
        expect_close(actual_cos, cos, f"cos of compute_rope_params(16, theta_base={theta})", atol=1e-5)
        expect_close(actual_sin, sin, f"sin of compute_rope_params(16, theta_base={theta})", atol=1e-5)


@rope
def test_rope_frequency_scaling_matches_recorded(sub, recorded):
    cos, sin = recorded["rope"]["scaled"]
    unscaled_cos, _ = recorded["rope"]["unscaled"]
    actual_cos, actual_sin = sub.compute_rope_params(
        64, theta_base=500_000, context_length=40, freq_config=dict(LLAMA31_SCALING)
    )
    expect_tensor(actual_cos, "cos with Llama 3.1's freq_config", shape=(40, 64))
    if torch.allclose(actual_cos, unscaled_cos, atol=1e-5):
        fail("compute_rope_params ignores freq_config: with Llama 3.1's scaling the low frequencies turn slower")
    # Position 1's angles are the inverse frequencies themselves: compare them pair by pair.
    expect_close(
        actual_cos[1, :32], cos[1, :32], "cos at position 1 (one angle per pair) with Llama 3.1's scaling", atol=1e-6
    )
    expect_close(actual_cos, cos, "cos with Llama 3.1's scaling", atol=1e-5)
    expect_close(actual_sin, sin, "sin with Llama 3.1's scaling", atol=1e-5)


@rope
def test_apply_rope_matches_recorded(sub, recorded):
    case = recorded["rope"]
    cos, sin = case["tables"][10_000]
    try:
        actual = sub.apply_rope(case["x"], cos, sin)
    except RuntimeError as exc:
        fail(
            f"apply_rope on 7 tokens with cos/sin tables of 12 rows raised: {exc} (use the tables' first num_tokens rows)"
        )
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


@rope
def test_apply_rope_keeps_the_input_dtype(sub):
    x = torch.randn(1, 2, 5, 8).to(torch.bfloat16)
    cos, sin = sub.compute_rope_params(8, context_length=9)
    expect_tensor(
        sub.apply_rope(x, cos, sin),
        "apply_rope on bfloat16 queries with float32 tables",
        shape=(1, 2, 5, 8),
        dtype=torch.bfloat16,
    )


@rope
def test_apply_rope_keeps_vector_lengths(sub):
    x = torch.randn(1, 2, 9, 8)
    cos, sin = sub.compute_rope_params(8, context_length=9)
    expect_close(
        sub.apply_rope(x, cos, sin).norm(dim=-1),
        x.norm(dim=-1),
        "the length of each rotated vector (a rotation keeps lengths)",
        atol=1e-5,
    )


@rope
def test_rope_scores_depend_only_on_relative_position(sub):
    generator = torch.Generator().manual_seed(9)
    q, k = torch.randn(1, 2, 6, 8, generator=generator), torch.randn(1, 2, 6, 8, generator=generator)
    cos, sin = sub.compute_rope_params(8, context_length=20)
    scores = sub.apply_rope(q, cos, sin) @ sub.apply_rope(k, cos, sin).transpose(-1, -2)
    for shift in (1, 7, 14):
        shifted = sub.apply_rope(q, cos[shift:], sin[shift:]) @ sub.apply_rope(k, cos[shift:], sin[shift:]).transpose(
            -1, -2
        )
        expect_close(
            shifted,
            scores,
            f"query-key scores with every position moved by {shift} (RoPE makes scores depend "
            "on the distance between positions only)",
            atol=1e-4,
        )


# ---------------------------------------------------------------- ch08.grouped_query_attention


def _gqa(sub, case: dict):
    d_in, d_out, num_heads, num_kv_groups = case["shape"]
    module = sub.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups)
    return load_parameters(module, case["state"], f"GroupedQueryAttention{case['shape']}").eval()


def _pytorch_gqa(
    sub,
    module,
    x: torch.Tensor,
    cos,
    sin,
    rotate: str = "qk",
    scale: float | None = None,
    causal: bool = True,
    tiled: bool = False,
) -> torch.Tensor:
    """The same attention through PyTorch's scaled_dot_product_attention, with the submission's RoPE.

    The keywords make the usual mistakes: `rotate` names the projections RoPE turns, `scale`
    replaces 1 / sqrt(head_dim), `causal=False` drops the mask and `tiled` gives query head h
    the key/value head h % num_kv_groups.
    """
    b, n, _ = x.shape
    heads, groups, head_dim = module.num_heads, module.num_kv_groups, module.head_dim
    projected = {"q": (module.W_query, heads), "k": (module.W_key, groups), "v": (module.W_value, groups)}
    q, k, v = ((x @ layer.weight.T).view(b, n, count, head_dim).transpose(1, 2) for layer, count in projected.values())
    q, k, v = (sub.apply_rope(t, cos, sin) if name in rotate else t for name, t in zip("qkv", (q, k, v)))
    if tiled:
        k, v = k.repeat(1, heads // groups, 1, 1), v.repeat(1, heads // groups, 1, 1)
    context = torch_attention(q, k, v, is_causal=causal, scale=scale, enable_gqa=True)
    return context.transpose(1, 2).reshape(b, n, heads * head_dim) @ module.out_proj.weight.T


def _gqa_mistakes(sub, module, x: torch.Tensor, cos, sin):
    """(what went wrong, the output it gives) for attentions that are easy to get wrong."""
    heads, groups, head_dim = module.num_heads, module.num_kv_groups, module.head_dim
    if groups not in (1, heads):
        yield (
            (
                f"gives query head h the key/value head h % {groups} (tiled, as .repeat does); with {heads} heads in "
                f"{groups} groups, query heads 0..{heads // groups - 1} share key/value head 0, the next ones head 1, "
                "and so on (repeat_interleave)"
            ),
            _pytorch_gqa(sub, module, x, cos, sin, tiled=True),
        )
    yield (
        "rotates the values too: RoPE turns the queries and the keys only",
        _pytorch_gqa(sub, module, x, cos, sin, rotate="qkv"),
    )
    yield "rotates the queries but not the keys", _pytorch_gqa(sub, module, x, cos, sin, rotate="q")
    yield "rotates the keys but not the queries", _pytorch_gqa(sub, module, x, cos, sin, rotate="k")
    yield (
        "rotates neither queries nor keys (apply_rope is never called)",
        _pytorch_gqa(sub, module, x, cos, sin, rotate=""),
    )
    yield (
        f"scales the scores by 1 / sqrt(d_out); the scale is 1 / sqrt(head_dim) = 1 / sqrt({head_dim})",
        _pytorch_gqa(sub, module, x, cos, sin, scale=(heads * head_dim) ** -0.5),
    )
    yield "does not scale the scores by 1 / sqrt(head_dim)", _pytorch_gqa(sub, module, x, cos, sin, scale=1.0)
    yield (
        "ignores the mask: each token attends to the tokens after it too (the mask is True where a key is hidden)",
        _pytorch_gqa(sub, module, x, cos, sin, causal=False),
    )


@grouped_query_attention
def test_gqa_projections_and_attributes(sub):
    module = sub.GroupedQueryAttention(10, 24, 6, 2)
    expected = {
        "W_query.weight": torch.empty(24, 10),
        "W_key.weight": torch.empty(8, 10),
        "W_value.weight": torch.empty(8, 10),
        "out_proj.weight": torch.empty(24, 24),
    }
    expect_parameter_names(module, expected, "GroupedQueryAttention(d_in=10, d_out=24, num_heads=6, num_kv_groups=2)")
    for attribute, value in (("num_heads", 6), ("num_kv_groups", 2), ("head_dim", 4)):
        expect(
            getattr(module, attribute, None) == value,
            f"GroupedQueryAttention(10, 24, 6, 2).{attribute} should be {value}; got {getattr(module, attribute, None)!r}",
        )


@grouped_query_attention
def test_gqa_rejects_heads_not_divisible_by_groups(sub):
    for args, problem in (((8, 12, 6, 4), "6 heads in 4 groups"), ((8, 10, 4, 2), "d_out 10 over 4 heads")):
        try:
            sub.GroupedQueryAttention(*args)
        except (ValueError, AssertionError):
            continue
        fail(f"GroupedQueryAttention{args} ({problem}) was built: raise a ValueError instead")


@grouped_query_attention
def test_gqa_matches_pytorch_attention(sub, recorded):
    for case in recorded["gqa"]:
        d_in, d_out, num_heads, num_kv_groups = case["shape"]
        module = _gqa(sub, case)
        cos, sin = sub.compute_rope_params(d_out // num_heads, context_length=10)
        actual = _no_grad(module, case["x"], _causal_mask(6), cos, sin)
        expect_tensor(actual, f"GroupedQueryAttention{case['shape']} output", shape=(2, 6, d_out))
        expected = _no_grad(_pytorch_gqa, sub, module, case["x"], cos, sin)
        what = f"GroupedQueryAttention{case['shape']}"
        if actual.isnan().any():
            row = int(actual.isnan().nonzero()[0][1])
            fail(
                f"{what} gives nan at position {row}: every key of that query is masked (hide the keys where the mask "
                "is True, the later positions, and keep the others)"
            )
        with torch.no_grad():
            expect_close_or_name_the_mistake(
                actual,
                expected,
                f"{what} output next to PyTorch's attention",
                what,
                _gqa_mistakes(sub, module, case["x"], cos, sin),
            )


@grouped_query_attention
def test_gqa_matches_recorded(sub, recorded):
    for case in recorded["gqa"]:
        d_out, num_heads = case["shape"][1], case["shape"][2]
        cos, sin = sub.compute_rope_params(d_out // num_heads, context_length=10)
        actual = _no_grad(_gqa(sub, case), case["x"], _causal_mask(6), cos, sin)
        expect_close(actual, case["output"], f"GroupedQueryAttention{case['shape']} output", atol=ATOL)


@grouped_query_attention
def test_gqa_is_causal(sub, recorded):
    case = recorded["gqa"][1]
    module = _gqa(sub, case)
    cos, sin = sub.compute_rope_params(4, context_length=10)
    expect_causal(
        lambda x: module(x, _causal_mask(x.shape[1]), cos, sin), case["x"], torch.randn, "GroupedQueryAttention"
    )


@grouped_query_attention
def test_gqa_gradients_reach_every_projection(sub, recorded):
    case = recorded["gqa"][1]
    module = _gqa(sub, case).train()
    cos, sin = sub.compute_rope_params(4, context_length=10)
    expect_gradients_reach(module, module(case["x"], _causal_mask(6), cos, sin), "GroupedQueryAttention")


# ---------------------------------------------------------------- ch08.llama_model


def _llama(sub, state: dict, cfg: dict = SMALL_LLAMA):
    return load_parameters(sub.Llama3Model(dict(cfg)), state, "Llama3Model").eval()


@llama_model
def test_llama_parameters_use_the_chapter_names(sub, recorded):
    expect_parameter_names(sub.Llama3Model(dict(SMALL_LLAMA)), recorded["llama"]["state"], "Llama3Model")


@llama_model
def test_llama_keeps_cfg_and_rope_tables_out_of_the_state_dict(sub):
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    expect(getattr(model, "cfg", None) == SMALL_LLAMA, "Llama3Model should keep its configuration as model.cfg")
    for name in ("cos", "sin"):
        table = getattr(model, name, None)
        expect_tensor(table, f"Llama3Model.{name} (the RoPE table)", shape=(24, 4))
        expect(
            name not in model.state_dict(),
            f"Llama3Model.{name} is in the state dict: register it with "
            "persistent=False, so that checkpoints hold parameters only",
        )


@llama_model
def test_llama_rope_tables_follow_the_configuration(sub):
    for scaling in (None, dict(LLAMA31_SCALING)):
        model = sub.Llama3Model({**SMALL_LLAMA, "rope_freq": scaling})
        base, length = SMALL_LLAMA["rope_base"], SMALL_LLAMA["context_length"]
        expected_cos, expected_sin = sub.compute_rope_params(4, base, length, scaling)
        if torch.allclose(model.cos, expected_cos) and torch.allclose(model.sin, expected_sin):
            continue
        which = "with cfg['rope_freq']" if scaling else "without scaling"
        if torch.allclose(model.cos, sub.compute_rope_params(4, context_length=length, freq_config=scaling)[0]):
            fail(f"Llama3Model.cos ({which}) uses compute_rope_params' default base: pass cfg['rope_base']")
        if torch.allclose(model.cos, sub.compute_rope_params(4, base, length)[0]):
            fail("Llama3Model.cos ignores cfg['rope_freq']: pass it to compute_rope_params as freq_config")
        expect_close(
            model.cos,
            expected_cos,
            f"Llama3Model.cos ({which}) next to compute_rope_params(head_dim=4, "
            "cfg['rope_base'], cfg['context_length'], cfg['rope_freq'])",
            atol=1e-6,
        )
        expect_close(model.sin, expected_sin, f"Llama3Model.sin ({which})", atol=1e-6)


@llama_model
def test_transformer_block_is_pre_norm_residual(sub):
    block = randomised(sub.TransformerBlock(dict(SMALL_LLAMA)), seed=6).eval()
    x = torch.randn(2, 5, 24, generator=torch.Generator().manual_seed(10))
    mask, (cos, sin) = _causal_mask(5), sub.compute_rope_params(4, context_length=8)
    actual = _no_grad(block, x, mask, cos, sin)
    expect_tensor(actual, "TransformerBlock output", shape=(2, 5, 24))

    def att(h):
        return block.att(h, mask, cos, sin)

    def mistakes():
        after_att, post_norm, normed = att(block.norm1(x)), block.norm1(x + att(x)), block.norm1(x)
        yield (
            "normalises after the residual sums (post-norm); Llama normalises each sublayer's input: "
            "x + att(norm1(x)), then x + ff(norm2(x))",
            block.norm2(post_norm + block.ff(post_norm)),
        )
        swapped = x + att(block.norm2(x))
        yield (
            "uses norm2 before the attention and norm1 before the feed-forward",
            swapped + block.ff(block.norm1(swapped)),
        )
        yield "has no residual connection around the attention", after_att + block.ff(block.norm2(after_att))
        yield "has no residual connection around the feed-forward", block.ff(block.norm2(x + after_att))
        yield (
            "adds the normalised input to the attention's output: the residual is x itself",
            (normed + att(normed)) + block.ff(block.norm2(normed + att(normed))),
        )
        yield (
            "runs the attention and the feed-forward side by side on x; the feed-forward takes the attention's result",
            x + after_att + block.ff(block.norm2(x)),
        )
        yield (
            "adds the feed-forward's output to x from before the attention: the second residual starts from "
            "x + att(norm1(x))",
            x + block.ff(block.norm2(x + after_att)),
        )

    with torch.no_grad():
        h = x + att(block.norm1(x))
        expect_close_or_name_the_mistake(
            actual,
            h + block.ff(block.norm2(h)),
            "TransformerBlock output next to "
            "x + att(norm1(x)), then + ff(norm2(...)) of its own att, ff, norm1 and norm2",
            "TransformerBlock",
            mistakes(),
        )


@llama_model
def test_llama_forward_runs_its_parts_in_order(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"])
    tokens = recorded["llama"]["tokens"][0]
    actual = _no_grad(model, tokens)
    expect_tensor(actual, "Llama3Model logits on a 2x9 input", shape=(2, 9, 37))
    if actual.isnan().any():
        row = int(actual.isnan().nonzero()[0][1])
        fail(
            f"Llama3Model gives nan logits (first at position {row}): a token whose keys are all masked gets nan, which "
            "spreads; the mask is True only above the diagonal, so each token sees itself and the tokens before it"
        )

    def blocks(x, mask, each_from_embeddings=False):
        out = x
        for block in model.trf_blocks:
            out = block(x if each_from_embeddings else out, mask, model.cos, model.sin)
        return out

    def mistakes():
        yield "skips final_norm before out_head", model.out_head(blocks(x, causal))
        yield (
            "lets each token see the tokens after it: the mask is True above the diagonal, where a key is hidden",
            model.out_head(model.final_norm(blocks(x, torch.zeros(9, 9, dtype=torch.bool)))),
        )
        yield (
            "gives every block the embeddings instead of the previous block's output",
            model.out_head(model.final_norm(blocks(x, causal, each_from_embeddings=True))),
        )

    with torch.no_grad():
        x, causal = model.tok_emb(tokens), _causal_mask(9)
        expect_close_or_name_the_mistake(
            actual,
            model.out_head(model.final_norm(blocks(x, causal))),
            "Llama3Model logits next to out_head(final_norm(the blocks on tok_emb(tokens), "
            "with a causal mask and model.cos, model.sin))",
            "Llama3Model",
            mistakes(),
        )


@llama_model
def test_llama_matches_recorded(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    for tokens, logits in zip(case["tokens"], case["logits"]):
        shape = "x".join(map(str, tokens.shape))
        expect_close(_no_grad(model, tokens), logits, f"Llama3Model logits on a {shape} input", atol=ATOL)


@llama_model
def test_llama_uses_the_rope_frequency_scaling(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["scaled_state"], {**SMALL_LLAMA, "rope_freq": dict(LLAMA31_SCALING)})
    expect_close(
        _no_grad(model, case["tokens"][1]),
        case["scaled_logits"],
        "Llama3Model logits with cfg['rope_freq'] (Llama 3.1's scaling)",
        atol=ATOL,
    )


@llama_model
def test_llama_is_causal(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"])
    expect_causal(model, recorded["llama"]["tokens"][0], lambda shape: torch.randint(0, 37, shape), "Llama3Model")


@llama_model
def test_llama_gradients_reach_every_parameter(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"]).train()
    expect_gradients_reach(model, model(recorded["llama"]["tokens"][0]), "Llama3Model")


@llama_model
def test_llama32_1b_configuration_parameter_count(sub):
    with skipped_init():
        model = sub.Llama3Model(dict(LLAMA32_1B))
    count = sum(p.numel() for p in model.parameters())
    expect(
        count == LLAMA32_1B_PARAMETERS,
        f"Llama3Model with Llama 3.2 1B's configuration has {count:,} parameters; "
        f"expected {LLAMA32_1B_PARAMETERS:,} (with its own out_head)",
    )
    for name, param in model.named_parameters():
        expect(
            param.dim() < 2 or param.dtype == torch.bfloat16,
            f"with cfg['dtype'] bfloat16 the weight matrices should be bfloat16; {name} is {param.dtype}",
        )


# ---------------------------------------------------------------- ch08.kv_cache


@kv_cache
def test_cached_forward_in_chunks_matches_the_full_forward(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    tokens = case["tokens"][1]
    full = _no_grad(model, tokens)
    cache = sub.KVCache(SMALL_LLAMA["n_layers"])
    start = 0
    for size in (5, 1, 1, 4, 1, 4):
        end = start + size
        logits = _no_grad(sub.forward_with_cache, model, tokens[:, start:end], cache)
        expect(
            cache.tokens_seen() == end,
            f"KVCache.tokens_seen() is {cache.tokens_seen()} after forward_with_cache on "
            f"tokens 0..{end - 1}; it should be {end}, the position of the next token",
        )
        expect_tensor(logits, f"forward_with_cache logits for tokens {start}..{end - 1}", shape=(1, size, 37))
        where = "the prompt" if start == 0 else f"tokens {start}..{end - 1}, fed after {start} cached tokens"
        expect_close(logits, full[:, start:end], f"forward_with_cache logits for {where}", atol=ATOL)
        start = end


@kv_cache
def test_cached_generation_matches_uncached(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    cached = sub.generate_text_simple_cached(model, case["prompts"], 8)
    uncached = sub.generate_text_simple_cached(model, case["prompts"], 8, use_cache=False)
    expect_equal_tensor(uncached, case["generated"], "generate_text_simple_cached(use_cache=False) tokens")
    expect_equal_tensor(cached, uncached, "the tokens generated with the cache (next to those without it)")


@kv_cache
def test_each_generation_starts_with_an_empty_cache(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    for prompt in (case["prompts"], case["tokens"][1][:, :3], case["prompts"][1:]):
        cached = sub.generate_text_simple_cached(model, prompt, 6)
        expected = sub.generate_text_simple_cached(model, prompt, 6, use_cache=False)
        expect_equal_tensor(
            cached,
            expected,
            f"tokens generated with the cache for a {tuple(prompt.shape)} prompt "
            "after earlier generations (a cache must not outlive its call)",
        )


@kv_cache
def test_uncached_generation_sees_the_last_context_size_tokens(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    ids = case["prompts"]
    with torch.no_grad():
        for _ in range(6):
            ids = torch.cat([ids, model(ids[:, -3:])[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    actual = sub.generate_text_simple_cached(model, case["prompts"], 6, context_size=3, use_cache=False)
    expect_tensor(actual, "generate_text_simple_cached(context_size=3, use_cache=False)")
    expect(
        actual.dim() == 2 and actual.shape[1] >= 6,
        "generate_text_simple_cached(..., 6, context_size=3, "
        f"use_cache=False) returned shape {tuple(actual.shape)}: expected (batch, at least the 6 new tokens)",
    )
    expect_equal_tensor(
        actual[:, -6:],
        ids[:, -6:],
        "the 6 tokens generated with context_size=3 and use_cache=False "
        "(each from the model run on the last 3 tokens only)",
    )


@kv_cache
def test_generation_runs_in_eval_mode_without_gradients(sub, recorded):
    model = _llama(sub, recorded["llama"]["state"]).train()
    seen = []  # (training, gradients on) at every call of any of the model's modules

    def record(module, args):
        seen.append((module.training, torch.is_grad_enabled()))

    hooks = [module.register_forward_pre_hook(record) for module in model.modules()]
    try:
        for use_cache in (True, False):
            seen.clear()
            sub.generate_text_simple_cached(model, recorded["llama"]["prompts"], 2, use_cache=use_cache)
            expect(
                not any(training for training, _ in seen),
                f"generate_text_simple_cached(use_cache={use_cache}) "
                "ran the model in training mode: call model.eval() first",
            )
            expect(
                not any(grad for _, grad in seen),
                f"generate_text_simple_cached(use_cache={use_cache}) builds "
                "gradient graphs: generate under torch.no_grad()",
            )
    finally:
        for hook in hooks:
            hook.remove()


@kv_cache
def test_cached_generation_stops_before_eos(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    prompt = case["prompts"][:1]
    generated = case["generated"][:1]
    eos_id = generated[0, 5 + 3].item()
    stop = next(i for i in range(5, generated.shape[1]) if generated[0, i] == eos_id)
    actual = sub.generate_text_simple_cached(model, prompt, 8, eos_id=eos_id)
    expect_equal_tensor(
        actual, generated[:, :stop], f"tokens generated with eos_id={eos_id} (stop before appending it)"
    )


# ---------------------------------------------------------------- ch08.load_llama_weights


@load_llama_weights
def test_hugging_face_names_go_to_the_right_parameters(sub, recorded):
    params = recorded["hugging_face"]["params"]
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    for name, param in model.named_parameters():
        expect(
            any(t.shape == param.shape and torch.equal(t, param) for t in params.values()),
            f"Llama3Model.{name} holds none of the Hugging Face tensors after loading",
        )
    for hf_name, ours in (
        ("model.layers.1.self_attn.q_proj.weight", "trf_blocks.1.att.W_query.weight"),
        ("model.layers.1.self_attn.o_proj.weight", "trf_blocks.1.att.out_proj.weight"),
        ("model.layers.1.mlp.gate_proj.weight", "trf_blocks.1.ff.fc1.weight"),
        ("model.layers.1.mlp.up_proj.weight", "trf_blocks.1.ff.fc2.weight"),
        ("model.layers.0.input_layernorm.weight", "trf_blocks.0.norm1.weight"),
        ("model.layers.0.post_attention_layernorm.weight", "trf_blocks.0.norm2.weight"),
        ("model.layers.0.self_attn.k_proj.weight", "trf_blocks.0.att.W_key.weight"),
        ("model.layers.0.self_attn.v_proj.weight", "trf_blocks.0.att.W_value.weight"),
        ("lm_head.weight", "out_head.weight"),
    ):
        expect(torch.equal(model.get_parameter(ours), params[hf_name]), f"{ours} should hold {hf_name}")


@load_llama_weights
def test_loaded_model_matches_hugging_face_logits(sub, recorded):
    case = recorded["hugging_face"]
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), case["params"])
    expect_close(
        _no_grad(model.eval(), case["tokens"]),
        case["logits"],
        "logits after loading, next to those of Hugging Face's LlamaForCausalLM",
        atol=1e-4,
    )


@load_llama_weights
def test_output_head_is_tied_when_lm_head_is_absent(sub, recorded):
    params = {name: t for name, t in recorded["hugging_face"]["params"].items() if name != "lm_head.weight"}
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    expect(
        torch.equal(model.out_head.weight, params["model.embed_tokens.weight"]),
        "without lm_head.weight, out_head.weight should be the token embedding (tied weights)",
    )


@load_llama_weights
def test_loading_rejects_a_tensor_of_the_wrong_shape(sub, recorded):
    params = dict(recorded["hugging_face"]["params"])
    params["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(24, 24)
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    try:
        sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    except NotImplementedError:
        raise
    except (ValueError, RuntimeError):  # copy_ into a parameter raises RuntimeError: as clear
        return
    fail("load_weights_into_llama accepted a (24, 24) k_proj weight for a (8, 24) W_key: raise a ValueError")


# ---------------------------------------------------------------- ch08.llama3_tokenizer


@pytest.fixture
def tokenizer(sub, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken")
    )  # tiktoken caches the ranks file: not in the course's cache
    return sub.Tokenizer(write_ranks(tmp_path / "tokenizer.model"))


@llama3_tokenizer
def test_special_tokens_follow_the_ranks(tokenizer):
    n = len(ranks())
    special = getattr(tokenizer, "special_tokens", None)
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


@llama3_tokenizer
def test_encode_matches_recorded(tokenizer, recorded):
    for text, ids in zip(recorded["tokenizer"]["texts"], recorded["tokenizer"]["ids"]):
        expect_sequence_equal(tokenizer.encode(text), ids, f"the ids of {text!r}")
        expect_text_equal(tokenizer.decode(ids), text, f"decode of the ids of {text!r}")


@llama3_tokenizer
def test_encode_adds_begin_and_end_of_text(tokenizer):
    plain = tokenizer.encode("the theme")
    begin, end = tokenizer.special_tokens["<|begin_of_text|>"], tokenizer.special_tokens["<|end_of_text|>"]
    expect_sequence_equal(tokenizer.encode("the theme", bos=True), [begin, *plain], "encode('the theme', bos=True)")
    expect_sequence_equal(tokenizer.encode("the theme", eos=True), [*plain, end], "encode('the theme', eos=True)")


@llama3_tokenizer
def test_special_tokens_only_where_allowed(tokenizer):
    eot = tokenizer.special_tokens["<|eot_id|>"]
    allowed = tokenizer.encode("is<|eot_id|>it", allowed_special={"<|eot_id|>"})
    expect_sequence_equal(
        allowed,
        [*tokenizer.encode("is"), eot, *tokenizer.encode("it")],
        "encode('is<|eot_id|>it', allowed_special={'<|eot_id|>'})",
    )
    try:
        plain = tokenizer.encode("is<|eot_id|>it")
    except ValueError:
        fail(
            "encode('is<|eot_id|>it') raised a ValueError: without allowed_special, a special token written in a text "
            "is encoded as ordinary text (tiktoken's disallowed_special=())"
        )
    expect(
        eot not in plain, "without allowed_special, '<|eot_id|>' written in a text should be encoded as ordinary text"
    )


@llama3_tokenizer
def test_chat_format_dialog_prompt_matches_recorded(sub, tokenizer, recorded):
    chat = sub.ChatFormat(tokenizer)
    special = tokenizer.special_tokens
    header = chat.encode_header({"role": "user", "content": "hi"})
    expect_sequence_equal(
        header,
        [
            special["<|start_header_id|>"],
            *tokenizer.encode("user"),
            special["<|end_header_id|>"],
            *tokenizer.encode("\n\n"),
        ],
        "encode_header of a user message",
    )
    message = chat.encode_message({"role": "user", "content": " hi \n"})
    expect_sequence_equal(
        message,
        [*header, *tokenizer.encode("hi"), special["<|eot_id|>"]],
        "encode_message of ' hi \\n' (content stripped, then <|eot_id|>)",
    )
    expect_sequence_equal(
        chat.encode_dialog_prompt(recorded["tokenizer"]["dialog"]),
        recorded["tokenizer"]["dialog_ids"],
        "encode_dialog_prompt of a system and a user message",
    )
