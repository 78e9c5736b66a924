"""The chapter 4 reference GPT agrees with PyTorch's layer norm and GELU and with Hugging Face's GPT-2."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import paths
from llmcourse.fast_init import skipped_init


@pytest.fixture(scope="module")
def ch04():
    if not paths.solution_notebook("ch04").exists():
        pytest.skip("needs solutions/ch04")
    import previous_chapters

    return previous_chapters.chapter("ch04")


def test_layer_norm_equals_torch_layer_norm(ch04):
    torch.manual_seed(0)
    norm = ch04.LayerNorm(16)
    with torch.no_grad():
        norm.scale.normal_()
        norm.shift.normal_()
    x = torch.randn(3, 5, 16) * 4 + 1
    torch.testing.assert_close(norm(x), F.layer_norm(x, (16,), norm.scale, norm.shift, eps=1e-5))


def test_gelu_equals_torch_tanh_gelu(ch04):
    x = torch.linspace(-8, 8, 1001)
    torch.testing.assert_close(ch04.GELU()(x), F.gelu(x, approximate="tanh"))


def test_gpt2_124m_has_163m_parameters_and_124m_with_a_tied_head(ch04):
    with skipped_init():
        model = ch04.GPTModel(ch04.GPT_CONFIG_124M)
    total = sum(p.numel() for p in model.parameters())
    assert total == 163_009_536
    assert total - model.out_head.weight.numel() == 124_412_160


def _hf_gpt2_like(ch04_model, cfg):
    """A Hugging Face GPT2LMHeadModel holding the same weights as a chapter 4 GPTModel."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(
        vocab_size=cfg["vocab_size"],
        n_positions=cfg["context_length"],
        n_embd=cfg["emb_dim"],
        n_layer=cfg["n_layers"],
        n_head=cfg["n_heads"],
        activation_function="gelu_new",
        layer_norm_epsilon=1e-5,
        tie_word_embeddings=False,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    hf = transformers.GPT2LMHeadModel(config).eval()
    ours = ch04_model.state_dict()
    mapped = {
        "transformer.wte.weight": ours["tok_emb.weight"],
        "transformer.wpe.weight": ours["pos_emb.weight"],
        "transformer.ln_f.weight": ours["final_norm.scale"],
        "transformer.ln_f.bias": ours["final_norm.shift"],
        "lm_head.weight": ours["out_head.weight"],
    }
    for i in range(cfg["n_layers"]):
        block, h = f"trf_blocks.{i}.", f"transformer.h.{i}."
        projections = [ours[f"{block}att.W_{name}.weight"] for name in ("query", "key", "value")]
        mapped[h + "attn.c_attn.weight"] = torch.cat(projections).T  # Conv1D stores (in, out)
        mapped[h + "attn.c_attn.bias"] = torch.cat([ours[f"{block}att.W_{n}.bias"] for n in ("query", "key", "value")])
        mapped[h + "attn.c_proj.weight"] = ours[block + "att.out_proj.weight"].T
        mapped[h + "attn.c_proj.bias"] = ours[block + "att.out_proj.bias"]
        mapped[h + "mlp.c_fc.weight"] = ours[block + "ff.layers.0.weight"].T
        mapped[h + "mlp.c_fc.bias"] = ours[block + "ff.layers.0.bias"]
        mapped[h + "mlp.c_proj.weight"] = ours[block + "ff.layers.2.weight"].T
        mapped[h + "mlp.c_proj.bias"] = ours[block + "ff.layers.2.bias"]
        for norm, ln in (("norm1", "ln_1"), ("norm2", "ln_2")):
            mapped[h + f"{ln}.weight"] = ours[f"{block}{norm}.scale"]
            mapped[h + f"{ln}.bias"] = ours[f"{block}{norm}.shift"]
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    assert not unexpected and all("attn.bias" in key or "masked_bias" in key for key in missing), (missing, unexpected)
    return hf


def test_gpt_model_logits_equal_hugging_face_gpt2(ch04):
    cfg = {
        "vocab_size": 97,
        "context_length": 16,
        "emb_dim": 32,
        "n_heads": 4,
        "n_layers": 3,
        "drop_rate": 0.1,
        "qkv_bias": True,
    }
    torch.manual_seed(0)
    model = ch04.GPTModel(cfg).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("scale", "shift", "bias")):
                param.normal_(0, 0.3)
    hf = _hf_gpt2_like(model, cfg)
    ids = torch.randint(0, 97, (2, 11))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits, atol=2e-5, rtol=1e-4)


def test_generate_text_simple_equals_hugging_face_greedy_search(ch04):
    cfg = {
        "vocab_size": 50,
        "context_length": 32,
        "emb_dim": 16,
        "n_heads": 2,
        "n_layers": 2,
        "drop_rate": 0.0,
        "qkv_bias": True,
    }
    torch.manual_seed(1)
    model = ch04.GPTModel(cfg).eval()
    hf = _hf_gpt2_like(model, cfg)
    prompt = torch.tensor([[4, 8, 15, 16]])
    ours = ch04.generate_text_simple(model, prompt, max_new_tokens=10, context_size=cfg["context_length"])
    theirs = hf.generate(
        prompt, max_new_tokens=10, do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(prompt)
    )
    assert ours.tolist() == theirs.tolist()
