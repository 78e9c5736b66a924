"""The chapter 8 reference Llama agrees with PyTorch's RMSNorm, SiLU and grouped attention, with
transformers' Llama 3.1 RoPE frequencies and LlamaForCausalLM, and with tiktoken's own encoding.

(Hugging Face and Meta checkpoints, GGUF files and SmolLM2 are compared with transformers in
test_pretrained_llama.py.)
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import paths
from autograder.checks.llama_setups import LLAMA31_SCALING


@pytest.fixture(scope="module")
def ch08():
    if not paths.solution_notebook("ch08").exists():
        pytest.skip("needs solutions/ch08")
    import previous_chapters

    return previous_chapters.chapter("ch08")


def test_rms_norm_equals_torch_rms_norm(ch08):
    norm = ch08.RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 5, 16) * 3 + 2
    torch.testing.assert_close(norm(x), F.rms_norm(x, (16,), norm.weight, eps=1e-6))


def test_silu_equals_torch_silu(ch08):
    x = torch.linspace(-10, 10, 1001)
    torch.testing.assert_close(ch08.SiLU()(x), F.silu(x))


@pytest.mark.parametrize("scaling", [None, LLAMA31_SCALING, {**LLAMA31_SCALING, "factor": 32.0}])
def test_rope_frequencies_equal_transformers(ch08, scaling):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    rope = {"rope_type": "default", "rope_theta": 500_000.0}
    if scaling:
        rope = {
            **rope,
            "rope_type": "llama3",
            "factor": scaling["factor"],
            "low_freq_factor": scaling["low_freq_factor"],
            "high_freq_factor": scaling["high_freq_factor"],
            "original_max_position_embeddings": scaling["original_context_length"],
        }
    config = LlamaConfig(
        hidden_size=2048, num_attention_heads=32, max_position_embeddings=131_072, rope_parameters=rope
    )
    if scaling:
        expected, _ = ROPE_INIT_FUNCTIONS["llama3"](config)
    else:
        expected = 1.0 / 500_000.0 ** (torch.arange(0, 64, 2).float() / 64)
    cos, sin = ch08.compute_rope_params(64, theta_base=500_000.0, context_length=300, freq_config=scaling)
    angles = torch.arange(300.0)[:, None] * expected.float()[None, :]
    torch.testing.assert_close(cos, torch.cos(angles).repeat(1, 2), atol=1e-4, rtol=0)
    torch.testing.assert_close(sin, torch.sin(angles).repeat(1, 2), atol=1e-4, rtol=0)


@pytest.mark.parametrize("num_kv_groups", [1, 2, 6])
def test_grouped_query_attention_equals_torch_attention(ch08, num_kv_groups):
    torch.manual_seed(0)
    attention = ch08.GroupedQueryAttention(12, 24, 6, num_kv_groups).eval()
    x = torch.randn(2, 7, 12)
    cos, sin = ch08.compute_rope_params(4, context_length=7)
    mask = torch.triu(torch.ones(7, 7, dtype=torch.bool), diagonal=1)

    def heads(t, n):
        return t.view(2, 7, n, 4).transpose(1, 2)

    q = ch08.apply_rope(heads(attention.W_query(x), 6), cos, sin)
    k = ch08.apply_rope(heads(attention.W_key(x), num_kv_groups), cos, sin)
    v = heads(attention.W_value(x), num_kv_groups)
    context = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    expected = attention.out_proj(context.transpose(1, 2).reshape(2, 7, 24))
    torch.testing.assert_close(attention(x, mask, cos, sin), expected)


def test_llama_logits_and_cached_generation_equal_transformers(ch08):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    rope = {
        "rope_type": "llama3",
        "rope_theta": 500_000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 16,
    }
    hf = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=97,
            hidden_size=48,
            intermediate_size=80,
            num_hidden_layers=2,
            num_attention_heads=6,
            num_key_value_heads=2,
            max_position_embeddings=64,
            rms_norm_eps=1e-5,
            rope_parameters=rope,
            tie_word_embeddings=False,
        )
    ).eval()
    cfg = {
        "vocab_size": 97,
        "context_length": 64,
        "emb_dim": 48,
        "n_heads": 6,
        "n_layers": 2,
        "hidden_dim": 80,
        "n_kv_groups": 2,
        "rope_base": 500_000.0,
        "rope_freq": {**LLAMA31_SCALING, "original_context_length": 16},
        "dtype": torch.float32,
    }
    model = ch08.Llama3Model(cfg)
    ch08.load_weights_into_llama(model, cfg, hf.state_dict())
    tokens = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(tokens), hf(tokens).logits, atol=1e-4, rtol=1e-4)
        expected = tokens[:1, :10]
        for _ in range(30):  # greedy decoding step by step: generate() would hold back its end-of-text id
            expected = torch.cat([expected, hf(expected).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(ch08.generate_text_simple_cached(model, tokens[:1, :10], 30), expected)


def test_tokenizer_equals_tiktoken_on_the_same_ranks(ch08, tmp_path, monkeypatch):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    from autograder.checks.llama_setups import ranks, write_ranks

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    path = write_ranks(tmp_path / "tokenizer.model")
    assert load_tiktoken_bpe(str(path)) == ranks()
    tokenizer = ch08.Tokenizer(path)
    plain = tiktoken.Encoding("plain", pat_str=ch08.LLAMA3_PATTERN, mergeable_ranks=ranks(), special_tokens={})
    text = "Hello world, 1234567 themes and THE theme's end.\n\n  ok"
    assert tokenizer.encode(text) == plain.encode(text)
    assert tokenizer.decode(tokenizer.encode(text, bos=True))[len("<|begin_of_text|>") :] == text


def test_rms_norm_float16_of_a_few_hundred_equals_float32_rms_norm(ch08):
    x = (torch.randn(3, 16) * 300).half()
    assert torch.isinf(x.pow(2).mean(dim=-1)).all()  # what computing in float16 would meet
    torch.testing.assert_close(ch08.RMSNorm(16)(x), F.rms_norm(x.float(), (16,), eps=1e-5).half())


@pytest.mark.parametrize("args", [(8, 12, 6, 4), (8, 10, 4, 2)])
def test_grouped_query_attention_rejects_indivisible_sizes_with_value_error(ch08, args):
    with pytest.raises(ValueError):
        ch08.GroupedQueryAttention(*args)


def _small_hugging_face_llama(ch08):
    from autograder.checks.llama_setups import SMALL_LLAMA

    source = ch08.Llama3Model(dict(SMALL_LLAMA))
    names = {"model.embed_tokens.weight": "tok_emb.weight", "model.norm.weight": "final_norm.weight"}
    layer = {"self_attn.k_proj": "att.W_key", "self_attn.q_proj": "att.W_query", "self_attn.v_proj": "att.W_value"}
    layer |= {"self_attn.o_proj": "att.out_proj", "mlp.gate_proj": "ff.fc1", "mlp.up_proj": "ff.fc2"}
    layer |= {"mlp.down_proj": "ff.fc3", "input_layernorm": "norm1", "post_attention_layernorm": "norm2"}
    for i in range(SMALL_LLAMA["n_layers"]):
        names |= {f"model.layers.{i}.{hf}.weight": f"trf_blocks.{i}.{ours}.weight" for hf, ours in layer.items()}
    return SMALL_LLAMA, {hf: source.get_parameter(ours).detach().clone() for hf, ours in names.items()}


@pytest.mark.parametrize("wrong", ["one row", "transposed"])
def test_loader_names_a_tensor_of_the_wrong_shape_in_a_value_error(ch08, wrong):
    cfg, params = _small_hugging_face_llama(ch08)
    name = "model.layers.1.self_attn.k_proj.weight"
    params[name] = params[name][:1] if wrong == "one row" else params[name].T
    with pytest.raises(ValueError, match=name):
        ch08.load_weights_into_llama(ch08.Llama3Model(dict(cfg)), cfg, params)


def test_generation_stops_at_an_eos_id_of_zero(ch08):
    from autograder.checks.llama_setups import SMALL_LLAMA

    torch.manual_seed(0)
    model = ch08.Llama3Model(dict(SMALL_LLAMA))
    prompt = torch.randint(0, 37, (1, 4))
    generated = ch08.generate_text_simple_cached(model, prompt, 12)
    eos = int(generated[0, 7])
    swap = torch.arange(37)
    swap[[0, eos]] = torch.tensor([eos, 0])
    with torch.no_grad():  # tokens 0 and eos swapped in the vocabulary: the model now generates 0 where it gave eos
        model.out_head.weight.copy_(model.out_head.weight[swap])
        model.tok_emb.weight.copy_(model.tok_emb.weight[swap])
    out = ch08.generate_text_simple_cached(model, swap[prompt], 12, eos_id=0)
    stop = next(i for i in range(4, generated.shape[1]) if generated[0, i] == eos)
    assert torch.equal(out, swap[generated[:, :stop]])
