"""The chapter 14 reference agrees with independent implementations: its load-balancing loss with
Hugging Face's `load_balancing_loss_func` for Mixtral (about 2 for 8 experts, top-2, near-uniform
logits); its parameter counts with Mixtral models that transformers builds on the meta device; its
MoE layer with a per-token loop and, for one expert and top-1, with chapter 8's FeedForward; its
capacity mask with a per-expert counter.
"""

from __future__ import annotations

import pytest
import torch

from autograder import paths


@pytest.fixture(scope="module")
def ch14():
    if not paths.solution_notebook("ch14").exists():
        pytest.skip("needs solutions/ch14")
    import previous_chapters

    return previous_chapters.chapter("ch14").namespace


def _hf_mixtral():
    return pytest.importorskip("transformers.models.mixtral.modeling_mixtral")


@pytest.mark.parametrize("top_k", [1, 2, 3])
@pytest.mark.parametrize("scale", [0.01, 1.0, 5.0])
def test_load_balancing_loss_matches_hugging_face(ch14, top_k, scale):
    mixtral = _hf_mixtral()
    logits = torch.randn(2, 37, 8, generator=torch.Generator().manual_seed(top_k)) * scale
    flat = logits.reshape(-1, 8)
    expected = mixtral.load_balancing_loss_func((flat,), 8, top_k)
    torch.testing.assert_close(ch14["load_balancing_loss"](logits, top_k), expected.float())


def test_load_balancing_loss_is_about_two_for_top2_at_initialisation(ch14):
    logits = 0.02 * torch.randn(4096, 8, generator=torch.Generator().manual_seed(0))
    assert abs(ch14["load_balancing_loss"](logits, 2).item() - 2.0) < 0.02


def test_router_z_loss_is_mean_squared_logsumexp(ch14):
    logits = torch.randn(3, 11, 6, generator=torch.Generator().manual_seed(1)) * 4
    expected = torch.logsumexp(logits, dim=-1).pow(2).mean()
    torch.testing.assert_close(ch14["router_z_loss"](logits), expected)


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("head_dim", [None, 12])
def test_parameter_counts_match_transformers_mixtral(ch14, tied, head_dim):
    transformers = pytest.importorskip("transformers")
    config = {
        "vocab_size": 211,
        "hidden_size": 32,
        "intermediate_size": 56,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_local_experts": 6,
        "num_experts_per_tok": 2,
        "tie_word_embeddings": tied,
    }
    if head_dim is not None:
        config["head_dim"] = head_dim
    with torch.device("meta"):
        model = transformers.MixtralForCausalLM(transformers.MixtralConfig(**config))
    total = sum(p.numel() for p in model.parameters())  # tied weights are counted once
    expert_params = sum(p.numel() for name, p in model.named_parameters() if ".experts." in name)
    per_expert = expert_params // (config["num_hidden_layers"] * config["num_local_experts"])
    active = total - config["num_hidden_layers"] * (6 - 2) * per_expert
    assert ch14["moe_parameter_counts"](config) == (total, active)


def test_mixtral_8x7b_counts(ch14):
    config = {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    total, active = ch14["moe_parameter_counts"](config)
    assert round(total / 1e9, 1) == 46.7 and round(active / 1e9, 1) == 12.9


def test_moe_layer_matches_per_token_loop_and_dense(ch14):
    torch.manual_seed(0)
    cfg = {"emb_dim": 16, "hidden_dim": 24, "dtype": None, "num_experts": 5, "num_experts_per_tok": 2}
    layer = ch14["MoEFeedForward"](cfg)
    x = torch.randn(3, 7, 16)
    out, logits = layer(x)
    tokens = x.reshape(-1, 16)
    probs = torch.softmax(tokens @ layer.gate.weight.T, dim=-1)
    expected = torch.zeros_like(tokens)
    for t in range(tokens.shape[0]):
        top = probs[t].topk(2)
        for w, e in zip(top.values / top.values.sum(), top.indices, strict=True):
            expected[t] += w * layer.experts[int(e)](tokens[t])
    torch.testing.assert_close(out, expected.reshape(x.shape), atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert layer.gate.weight.grad.abs().sum() > 0

    one = {**cfg, "num_experts": 1, "num_experts_per_tok": 1}
    layer, dense = ch14["MoEFeedForward"](one), ch14["FeedForward"](one)
    dense.load_state_dict(layer.experts[0].state_dict())
    torch.testing.assert_close(layer(x)[0], dense(x))


def test_capacity_mask_matches_a_counter(ch14):
    gen = torch.Generator().manual_seed(2)
    indices = torch.topk(torch.randn(50, 6, generator=gen), 2, dim=-1).indices
    capacity = ch14["expert_capacity"](50, 6, 2, 1.0)
    assert capacity == 17
    used, expected = [0] * 6, torch.zeros(50, 2, dtype=torch.bool)
    for t in range(50):
        for j in range(2):
            e = int(indices[t, j])
            expected[t, j] = used[e] < capacity
            used[e] += int(expected[t, j])
    assert torch.equal(ch14["capacity_mask"](indices, 6, capacity), expected)
