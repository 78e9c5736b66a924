"""Hidden checks of chapter 8: the live reference against the submission on configurations,
parameters and inputs drawn from the seed. Messages say what differs, never the inputs."""
from __future__ import annotations

import random

import torch
from torch import nn

from autograder.checks.llama_setups import write_ranks
from autograder.checks.modules import Randomised, expect_same_module, parameter_state, randomised
from autograder.checks.test_ch08 import (
    grouped_query_attention,
    kv_cache,
    llama3_tokenizer,
    llama_model,
    load_llama_weights,
    rms_norm,
    rope,
    swiglu,
)
from autograder.compare import expect_close, expect_equal_tensor, expect_sequence_equal


def _config(rng: random.Random) -> dict:
    n_kv_groups = rng.randint(1, 3)
    n_heads = n_kv_groups * rng.randint(1, 3)
    scaling = rng.choice([None, {"factor": rng.choice([8.0, 32.0]), "low_freq_factor": 1.0,
                                 "high_freq_factor": 4.0, "original_context_length": rng.choice([64, 8192])}])
    return {"vocab_size": rng.randint(10, 60), "context_length": rng.randint(8, 20), "emb_dim": n_heads * 2 * rng.randint(1, 3),
            "n_heads": n_heads, "n_layers": rng.randint(1, 3), "hidden_dim": rng.randint(4, 30), "n_kv_groups": n_kv_groups,
            "rope_base": rng.choice([10_000.0, 500_000.0]), "rope_freq": scaling, "dtype": torch.float32}


class _WithRope(nn.Module):
    """A GroupedQueryAttention called like a one-input module: causal mask and RoPE tables built here."""

    def __init__(self, attention: nn.Module, rope_params):
        super().__init__()
        self.attention = attention
        self.rope_params = rope_params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        num_tokens = x.shape[1]
        cos, sin = self.rope_params(self.attention.head_dim, context_length=num_tokens + 3)
        mask = torch.triu(torch.ones(num_tokens, num_tokens, dtype=torch.bool), diagonal=1)
        return self.attention(x, mask, cos, sin)


def _attention_factory(namespace, random_weights: bool):
    def build(d_in, d_out, num_heads, num_kv_groups):
        attention = namespace.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups)
        return _WithRope(randomised(attention) if random_weights else attention, namespace.compute_rope_params)

    return build


def _same_llama(sub, ref, cfg: dict):
    reference = randomised(ref.Llama3Model(cfg)).eval()
    mine = sub.Llama3Model(dict(cfg))
    mine.load_state_dict(parameter_state(reference), strict=False)
    return mine.eval(), reference


@rms_norm
def test_rms_norm_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for a random width, eps and scale"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    width = rng.randint(2, 40)
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, 5), width) * rng.choice([0.01, 1.0, 10.0]) + rng.random()
    config = {"emb_dim": width, "eps": rng.choice([1e-5, 1e-6, 1e-3])}
    expect_same_module(sub.RMSNorm, Randomised(ref.RMSNorm), config, inputs, "RMSNorm")


@swiglu
def test_feed_forward_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for random widths"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    expect_same_module(sub.FeedForward, ref.FeedForward, {"cfg": cfg}, torch.randn(2, 3, cfg["emb_dim"]), "FeedForward")


@rope
def test_rope_agrees_with_reference(sub, ref, seed):
    """hidden: tables and rotations for a random head size, base, length and scaling"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    head_dim = 2 * rng.randint(1, 40)
    args = (head_dim, cfg["rope_base"], cfg["context_length"], cfg["rope_freq"])
    expected_cos, expected_sin = ref.compute_rope_params(*args)
    cos, sin = sub.compute_rope_params(*args)
    expect_close(cos, expected_cos, "cos for a hidden configuration", atol=1e-5)
    expect_close(sin, expected_sin, "sin for a hidden configuration", atol=1e-5)
    x = torch.randn(rng.randint(1, 2), rng.randint(1, 3), rng.randint(1, cfg["context_length"]), head_dim)
    expect_close(sub.apply_rope(x, expected_cos, expected_sin), ref.apply_rope(x, expected_cos, expected_sin),
                 "apply_rope on a hidden input", atol=1e-5)


@grouped_query_attention
def test_gqa_agrees_with_reference(sub, ref, seed):
    """hidden: outputs and gradients for random sizes, heads and groups"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    num_kv_groups = rng.randint(1, 3)
    num_heads = num_kv_groups * rng.randint(1, 3)
    config = {"d_in": rng.randint(2, 12), "d_out": num_heads * 2 * rng.randint(1, 3), "num_heads": num_heads,
              "num_kv_groups": num_kv_groups}
    inputs = torch.randn(rng.randint(1, 3), rng.randint(1, 8), config["d_in"])
    expect_same_module(_attention_factory(sub, random_weights=False), _attention_factory(ref, random_weights=True), config, inputs,
                       "GroupedQueryAttention")


@llama_model
def test_llama_agrees_with_reference(sub, ref, seed):
    """hidden: logits and gradients for a random configuration and input length"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    inputs = torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, cfg["context_length"])))
    expect_same_module(sub.Llama3Model, Randomised(ref.Llama3Model), {"cfg": cfg}, inputs, "Llama3Model")


@kv_cache
def test_cached_generation_agrees_with_reference(sub, ref, seed):
    """hidden: chunked cached logits and cached greedy tokens on a random model and prompt"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    model, reference = _same_llama(sub, ref, cfg)
    prompt = torch.randint(0, cfg["vocab_size"], (rng.randint(1, 3), rng.randint(1, 4)))
    steps = rng.randint(1, cfg["context_length"] - prompt.shape[1])
    expected = ref.generate_text_simple_cached(reference, prompt, steps)
    expect_equal_tensor(sub.generate_text_simple_cached(model, prompt, steps), expected,
                        "cached greedy tokens on a hidden model and prompt")
    tokens = torch.randint(0, cfg["vocab_size"], (1, cfg["context_length"]))
    with torch.no_grad():
        full = reference(tokens)
        cache, start = sub.KVCache(cfg["n_layers"]), 0
        while start < tokens.shape[1]:
            end = min(tokens.shape[1], start + rng.randint(1, 5))
            expect_close(sub.forward_with_cache(model, tokens[:, start:end], cache), full[:, start:end],
                         "cached logits of a hidden chunk", atol=1e-4)
            start = end


@load_llama_weights
def test_loading_agrees_with_reference(sub, ref, seed):
    """hidden: the parameters after loading random Hugging Face-named weights, tied or not"""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    cfg = _config(rng)
    source = randomised(ref.Llama3Model(cfg))
    params = {"model.embed_tokens.weight": source.tok_emb.weight, "model.norm.weight": source.final_norm.weight}
    if rng.random() < 0.5:
        params["lm_head.weight"] = source.out_head.weight
    names = {"self_attn.q_proj": "att.W_query", "self_attn.k_proj": "att.W_key", "self_attn.v_proj": "att.W_value",
             "self_attn.o_proj": "att.out_proj", "mlp.gate_proj": "ff.fc1", "mlp.up_proj": "ff.fc2",
             "mlp.down_proj": "ff.fc3", "input_layernorm": "norm1", "post_attention_layernorm": "norm2"}
    for i in range(cfg["n_layers"]):
        for theirs, ours in names.items():
            params[f"model.layers.{i}.{theirs}.weight"] = source.get_parameter(f"trf_blocks.{i}.{ours}.weight")
    params = {name: tensor.detach().clone() for name, tensor in params.items()}
    mine, expected = sub.Llama3Model(dict(cfg)), ref.Llama3Model(cfg)
    sub.load_weights_into_llama(mine, dict(cfg), dict(params))
    ref.load_weights_into_llama(expected, cfg, dict(params))
    theirs = dict(expected.named_parameters(remove_duplicate=False))
    for name, param in mine.named_parameters(remove_duplicate=False):
        expect_close(param, theirs[name], f"{name} after loading hidden weights", atol=0)


@llama3_tokenizer
def test_tokenizer_agrees_with_reference(sub, ref, seed, tmp_path, monkeypatch):
    """hidden: ids of random texts and a random dialog"""
    rng = random.Random(seed)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))  # tiktoken caches the ranks file: not in the course's cache
    path = write_ranks(tmp_path / "tokenizer.model")
    mine, theirs = sub.Tokenizer(path), ref.Tokenizer(path)
    pieces = ["the", " them", "Hello", " world", "123", "4567", " ", "  ", "\n", "\n\n", "'s", "'LL", "é", "🙂", ",", "!?"]
    for _ in range(5):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        bos, eos = rng.random() < 0.5, rng.random() < 0.5
        expect_sequence_equal(mine.encode(text, bos=bos, eos=eos), theirs.encode(text, bos=bos, eos=eos),
                              "the ids of a hidden text")
    dialog = [{"role": rng.choice(["system", "user", "assistant"]), "content": " " + "".join(rng.choice(pieces) for _ in range(5))}
              for _ in range(rng.randint(1, 4))]
    expect_sequence_equal(sub.ChatFormat(mine).encode_dialog_prompt(dialog), ref.ChatFormat(theirs).encode_dialog_prompt(dialog),
                          "the ids of a hidden dialog")
