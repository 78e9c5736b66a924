"""Public checks of chapter 8: from GPT to Llama.

RMSNorm, SiLU and attention are compared with PyTorch's own (called by the checks,
never by the exercises); the modules get recorded parameters by name and must
reproduce the reference's recorded outputs; the loader must reproduce the logits
Hugging Face's LlamaForCausalLM computed; cached generation must agree with the
submission's own model run without a cache.
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
    skipped_init,
)
from autograder.compare import (
    expect,
    expect_close,
    expect_equal_tensor,
    expect_sequence_equal,
    expect_tensor,
    expect_text_equal,
    fail,
)

rms_norm = pytest.mark.ch08_rms_norm(pytest.mark.forbid("torch.nn.RMSNorm", "torch.nn.functional.rms_norm", "torch.rms_norm"))
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
LLAMA32_1B = {"vocab_size": 128_256, "context_length": 8192, "emb_dim": 2048, "n_heads": 32, "n_layers": 16,
              "hidden_dim": 8192, "n_kv_groups": 8, "rope_base": 500_000.0,
              "rope_freq": {**LLAMA31_SCALING, "factor": 32.0}, "dtype": torch.bfloat16}
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
        if torch.allclose(actual, torch_layer_norm(x, (10,), weight, eps=eps), atol=1e-4):
            fail(f"RMSNorm(10, eps={eps}) subtracts the mean (that is LayerNorm): divide x itself by its root mean square")
        eps_outside = x / (x.pow(2).mean(dim=-1, keepdim=True).sqrt() + eps) * weight
        if torch.allclose(actual, eps_outside, atol=1e-5) and not torch.allclose(actual, torch_rms_norm(x, (10,), weight, eps), atol=1e-5):
            fail(f"RMSNorm(10, eps={eps}) adds eps after the square root: it belongs inside, sqrt(mean(x**2) + eps)")
        expect_close(actual, torch_rms_norm(x, (10,), weight, eps), f"RMSNorm(10, eps={eps}) output", atol=1e-5)


@rms_norm
def test_rms_norm_keeps_shape_and_dtype(sub):
    norm = sub.RMSNorm(8)
    for x in (torch.randn(8), torch.randn(2, 3, 5, 8), torch.randn(4, 8, dtype=torch.bfloat16)):
        out = _no_grad(norm, x)
        expect_tensor(out, f"RMSNorm(8) on a {x.dtype} input of shape {tuple(x.shape)}", shape=tuple(x.shape), dtype=x.dtype)


@rms_norm
def test_rms_norm_gradient_reaches_weight(sub):
    norm = sub.RMSNorm(10)
    expect_gradients_reach(norm, norm(_rms_norm_inputs()), "RMSNorm")


# ---------------------------------------------------------------- ch08.swiglu


def _feed_forward_cfg(**changes) -> dict:
    return {"emb_dim": 6, "hidden_dim": 10, "dtype": None, **changes}


def _random_weights(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return module


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
    module = _random_weights(sub.FeedForward(_feed_forward_cfg()), seed=2).eval()
    x = torch.randn(2, 5, 6, generator=torch.Generator().manual_seed(3))
    fc1, fc2, fc3 = (getattr(module, name).weight.detach() for name in ("fc1", "fc2", "fc3"))
    actual = _no_grad(module, x)
    expect_tensor(actual, "FeedForward output", shape=(2, 5, 6))
    if torch.allclose(actual, (x @ fc1.T * torch_silu(x @ fc2.T)) @ fc3.T, atol=ATOL):
        fail("FeedForward applies SiLU to fc2's output: the gate is silu(fc1(x)), multiplied by fc2(x)")
    expect_close(actual, (torch_silu(x @ fc1.T) * (x @ fc2.T)) @ fc3.T, "FeedForward output (fc3(silu(fc1(x)) * fc2(x)))",
                 atol=ATOL)


@swiglu
def test_feed_forward_uses_the_configured_dtype(sub):
    module = sub.FeedForward(_feed_forward_cfg(dtype=torch.bfloat16))
    for name, param in module.named_parameters():
        expect(param.dtype == torch.bfloat16, f"FeedForward with cfg['dtype'] bfloat16 has {name} in {param.dtype}")


@swiglu
def test_feed_forward_gradients_reach_every_layer(sub):
    module = _random_weights(sub.FeedForward(_feed_forward_cfg()), seed=4)
    expect_gradients_reach(module, module(torch.randn(2, 3, 6)), "FeedForward")


# ---------------------------------------------------------------- ch08.rope


@rope
def test_rope_tables_shape_and_position_zero(sub):
    cos, sin = sub.compute_rope_params(16, theta_base=10_000, context_length=12)
    expect_tensor(cos, "cos of compute_rope_params(16, context_length=12)", shape=(12, 16))
    expect_tensor(sin, "sin of compute_rope_params(16, context_length=12)", shape=(12, 16))
    expect_close(cos[0], torch.ones(16), "cos at position 0 (no rotation)", atol=1e-6)
    expect_close(sin[0], torch.zeros(16), "sin at position 0 (no rotation)", atol=1e-6)


@rope
def test_rope_tables_repeat_the_angles_in_both_halves(sub):
    cos, sin = sub.compute_rope_params(16, theta_base=10_000, context_length=12)
    expect(torch.allclose(cos[:, :8], cos[:, 8:]) and torch.allclose(sin[:, :8], sin[:, 8:]),
           "the two halves of the cos/sin rows differ: in the rotate-half layout dimension i and i + head_dim // 2 "
           "form a pair and turn by the same angle, so each row is the angles of the head_dim // 2 pairs twice")


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
    actual_cos, actual_sin = sub.compute_rope_params(64, theta_base=500_000, context_length=40,
                                                     freq_config=dict(LLAMA31_SCALING))
    expect_tensor(actual_cos, "cos with Llama 3.1's freq_config", shape=(40, 64))
    if torch.allclose(actual_cos, unscaled_cos, atol=1e-5):
        fail("compute_rope_params ignores freq_config: with Llama 3.1's scaling the low frequencies turn slower")
    # Position 1's angles are the inverse frequencies themselves: compare them pair by pair.
    expect_close(actual_cos[1, :32], cos[1, :32], "cos at position 1 (one angle per pair) with Llama 3.1's scaling",
                 atol=1e-6)
    expect_close(actual_cos, cos, "cos with Llama 3.1's scaling", atol=1e-5)
    expect_close(actual_sin, sin, "sin with Llama 3.1's scaling", atol=1e-5)


@rope
def test_apply_rope_matches_recorded(sub, recorded):
    case = recorded["rope"]
    cos, sin = case["tables"][10_000]
    try:
        actual = sub.apply_rope(case["x"], cos, sin)
    except RuntimeError as exc:
        fail(f"apply_rope on 7 tokens with cos/sin tables of 12 rows raised: {exc} (use the tables' first num_tokens rows)")
    expect_tensor(actual, "apply_rope output", shape=(2, 3, 7, 16), dtype=torch.float32)
    expect_close(actual, case["rotated"], "apply_rope output (rotate-half layout: dimension i pairs with i + 8)", atol=1e-5)


@rope
def test_apply_rope_keeps_vector_lengths(sub):
    x = torch.randn(1, 2, 9, 8)
    cos, sin = sub.compute_rope_params(8, context_length=9)
    expect_close(sub.apply_rope(x, cos, sin).norm(dim=-1), x.norm(dim=-1), "the length of each rotated vector "
                 "(a rotation keeps lengths)", atol=1e-5)


@rope
def test_rope_scores_depend_only_on_relative_position(sub):
    generator = torch.Generator().manual_seed(9)
    q, k = torch.randn(1, 2, 6, 8, generator=generator), torch.randn(1, 2, 6, 8, generator=generator)
    cos, sin = sub.compute_rope_params(8, context_length=20)
    scores = sub.apply_rope(q, cos, sin) @ sub.apply_rope(k, cos, sin).transpose(-1, -2)
    for shift in (1, 7, 14):
        shifted = (sub.apply_rope(q, cos[shift:], sin[shift:]) @ sub.apply_rope(k, cos[shift:], sin[shift:]).transpose(-1, -2))
        expect_close(shifted, scores, f"query-key scores with every position moved by {shift} (RoPE makes scores depend "
                     "on the distance between positions only)", atol=1e-4)


# ---------------------------------------------------------------- ch08.grouped_query_attention


def _gqa(sub, case: dict):
    d_in, d_out, num_heads, num_kv_groups = case["shape"]
    module = sub.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups)
    return load_parameters(module, case["state"], f"GroupedQueryAttention{case['shape']}").eval()


def _pytorch_gqa(sub, module, x: torch.Tensor, cos, sin) -> torch.Tensor:
    """The same attention through PyTorch's scaled_dot_product_attention, with the submission's RoPE."""
    b, n, _ = x.shape
    heads, groups, head_dim = module.num_heads, module.num_kv_groups, module.head_dim
    q = (x @ module.W_query.weight.T).view(b, n, heads, head_dim).transpose(1, 2)
    k = (x @ module.W_key.weight.T).view(b, n, groups, head_dim).transpose(1, 2)
    v = (x @ module.W_value.weight.T).view(b, n, groups, head_dim).transpose(1, 2)
    context = torch_attention(sub.apply_rope(q, cos, sin), sub.apply_rope(k, cos, sin), v, is_causal=True, enable_gqa=True)
    return context.transpose(1, 2).reshape(b, n, heads * head_dim) @ module.out_proj.weight.T


@grouped_query_attention
def test_gqa_projections_and_attributes(sub):
    module = sub.GroupedQueryAttention(10, 24, 6, 2)
    expected = {"W_query.weight": torch.empty(24, 10), "W_key.weight": torch.empty(8, 10),
                "W_value.weight": torch.empty(8, 10), "out_proj.weight": torch.empty(24, 24)}
    expect_parameter_names(module, expected, "GroupedQueryAttention(d_in=10, d_out=24, num_heads=6, num_kv_groups=2)")
    for attribute, value in (("num_heads", 6), ("num_kv_groups", 2), ("head_dim", 4)):
        expect(getattr(module, attribute, None) == value,
               f"GroupedQueryAttention(10, 24, 6, 2).{attribute} should be {value}; got {getattr(module, attribute, None)!r}")


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
        if num_kv_groups not in (1, num_heads) and not torch.allclose(actual, expected, atol=ATOL):
            fail(f"GroupedQueryAttention with {num_heads} heads in {num_kv_groups} groups differs from PyTorch's grouped "
                 f"attention by {(actual - expected).abs().max():.3g}: query heads 0..{num_heads // num_kv_groups - 1} "
                 "share key/value head 0, the next ones head 1, and so on")
        expect_close(actual, expected, f"GroupedQueryAttention{case['shape']} output next to PyTorch's attention", atol=ATOL)


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
    expect_causal(lambda x: module(x, _causal_mask(x.shape[1]), cos, sin), case["x"], torch.randn,
                  "GroupedQueryAttention")


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
        expect(name not in model.state_dict(), f"Llama3Model.{name} is in the state dict: register it with "
               "persistent=False, so that checkpoints hold parameters only")


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
    expect_close(_no_grad(model, case["tokens"][1]), case["scaled_logits"],
                 "Llama3Model logits with cfg['rope_freq'] (Llama 3.1's scaling)", atol=ATOL)


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
    expect(count == LLAMA32_1B_PARAMETERS, f"Llama3Model with Llama 3.2 1B's configuration has {count:,} parameters; "
           f"expected {LLAMA32_1B_PARAMETERS:,} (with its own out_head)")
    dtypes = {p.dtype for p in model.parameters() if p.dim() == 2}
    expect(dtypes == {torch.bfloat16}, f"with cfg['dtype'] bfloat16 the weight matrices should be bfloat16; got {dtypes}")


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
        expect_equal_tensor(cached, expected, f"tokens generated with the cache for a {tuple(prompt.shape)} prompt "
                            "after earlier generations (a cache must not outlive its call)")


@kv_cache
def test_cached_generation_stops_before_eos(sub, recorded):
    case = recorded["llama"]
    model = _llama(sub, case["state"])
    prompt = case["prompts"][:1]
    generated = case["generated"][:1]
    eos_id = generated[0, 5 + 3].item()
    stop = next(i for i in range(5, generated.shape[1]) if generated[0, i] == eos_id)
    actual = sub.generate_text_simple_cached(model, prompt, 8, eos_id=eos_id)
    expect_equal_tensor(actual, generated[:, :stop], f"tokens generated with eos_id={eos_id} (stop before appending it)")


# ---------------------------------------------------------------- ch08.load_llama_weights


@load_llama_weights
def test_hugging_face_names_go_to_the_right_parameters(sub, recorded):
    params = recorded["hugging_face"]["params"]
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    for name, param in model.named_parameters():
        expect(any(t.shape == param.shape and torch.equal(t, param) for t in params.values()),
               f"Llama3Model.{name} holds none of the Hugging Face tensors after loading")
    for hf_name, ours in (("model.layers.1.mlp.gate_proj.weight", "trf_blocks.1.ff.fc1.weight"),
                          ("model.layers.1.mlp.up_proj.weight", "trf_blocks.1.ff.fc2.weight"),
                          ("model.layers.0.input_layernorm.weight", "trf_blocks.0.norm1.weight"),
                          ("model.layers.0.post_attention_layernorm.weight", "trf_blocks.0.norm2.weight"),
                          ("model.layers.0.self_attn.k_proj.weight", "trf_blocks.0.att.W_key.weight"),
                          ("model.layers.0.self_attn.v_proj.weight", "trf_blocks.0.att.W_value.weight"),
                          ("lm_head.weight", "out_head.weight")):
        expect(torch.equal(model.get_parameter(ours), params[hf_name]), f"{ours} should hold {hf_name}")


@load_llama_weights
def test_loaded_model_matches_hugging_face_logits(sub, recorded):
    case = recorded["hugging_face"]
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), case["params"])
    expect_close(_no_grad(model.eval(), case["tokens"]), case["logits"],
                 "logits after loading, next to those of Hugging Face's LlamaForCausalLM", atol=1e-4)


@load_llama_weights
def test_output_head_is_tied_when_lm_head_is_absent(sub, recorded):
    params = {name: t for name, t in recorded["hugging_face"]["params"].items() if name != "lm_head.weight"}
    model = sub.Llama3Model(dict(SMALL_LLAMA))
    sub.load_weights_into_llama(model, dict(SMALL_LLAMA), params)
    expect(torch.equal(model.out_head.weight, params["model.embed_tokens.weight"]),
           "without lm_head.weight, out_head.weight should be the token embedding (tied weights)")


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
def tokenizer(sub, tmp_path):
    return sub.Tokenizer(write_ranks(tmp_path / "tokenizer.model"))


@llama3_tokenizer
def test_special_tokens_follow_the_ranks(tokenizer):
    n = len(ranks())
    special = getattr(tokenizer, "special_tokens", None)
    expect(isinstance(special, dict), "Tokenizer.special_tokens should be a dict from special token to id")
    expect(len(special) == 256, f"Llama 3 has 256 special tokens; Tokenizer.special_tokens has {len(special)}")
    for name, offset in (("<|begin_of_text|>", 0), ("<|end_of_text|>", 1), ("<|start_header_id|>", 6),
                         ("<|end_header_id|>", 7), ("<|eot_id|>", 9), ("<|reserved_special_token_5|>", 10)):
        expect(special.get(name) == n + offset,
               f"{name} should have id {n + offset} (the ranks file has {n} tokens); got {special.get(name)}")


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
    expect_sequence_equal(allowed, [*tokenizer.encode("is"), eot, *tokenizer.encode("it")],
                          "encode('is<|eot_id|>it', allowed_special={'<|eot_id|>'})")
    plain = tokenizer.encode("is<|eot_id|>it")
    expect(eot not in plain, "without allowed_special, '<|eot_id|>' written in a text should be encoded as ordinary text")


@llama3_tokenizer
def test_chat_format_dialog_prompt_matches_recorded(sub, tokenizer, recorded):
    chat = sub.ChatFormat(tokenizer)
    special = tokenizer.special_tokens
    header = chat.encode_header({"role": "user", "content": "hi"})
    expect_sequence_equal(header, [special["<|start_header_id|>"], *tokenizer.encode("user"), special["<|end_header_id|>"],
                                   *tokenizer.encode("\n\n")], "encode_header of a user message")
    message = chat.encode_message({"role": "user", "content": " hi \n"})
    expect_sequence_equal(message, [*header, *tokenizer.encode("hi"), special["<|eot_id|>"]],
                          "encode_message of ' hi \\n' (content stripped, then <|eot_id|>)")
    expect_sequence_equal(chat.encode_dialog_prompt(recorded["tokenizer"]["dialog"]), recorded["tokenizer"]["dialog_ids"],
                          "encode_dialog_prompt of a system and a user message")
