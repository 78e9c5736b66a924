"""The chapter 3 reference attention agrees with PyTorch's own attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from autograder import paths


@pytest.fixture(scope="module")
def ch03():
    if not paths.solution_notebook("ch03").exists():
        pytest.skip("needs solutions/ch03")
    import previous_chapters

    return previous_chapters.chapter("ch03")


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(batch, tokens, d_out) -> (batch, heads, tokens, head_dim)"""
    batch, tokens, width = x.shape
    return x.view(batch, tokens, num_heads, width // num_heads).transpose(1, 2)


def test_causal_attention_equals_scaled_dot_product_attention(ch03):
    torch.manual_seed(0)
    module = ch03.CausalAttention(d_in=6, d_out=5, context_length=9, dropout=0.3, qkv_bias=True).eval()
    x = torch.randn(3, 7, 6)
    expected = F.scaled_dot_product_attention(module.W_query(x), module.W_key(x), module.W_value(x), is_causal=True)
    torch.testing.assert_close(module(x), expected)


def test_multihead_attention_equals_scaled_dot_product_attention_per_head(ch03):
    torch.manual_seed(1)
    module = ch03.MultiHeadAttention(d_in=6, d_out=12, context_length=9, dropout=0.3, num_heads=4).eval()
    x = torch.randn(2, 9, 6)
    heads = F.scaled_dot_product_attention(
        *(_split_heads(proj(x), 4) for proj in (module.W_query, module.W_key, module.W_value)), is_causal=True
    )
    expected = module.out_proj(heads.transpose(1, 2).reshape(2, 9, 12))
    torch.testing.assert_close(module(x), expected)


def test_multihead_attention_equals_torch_multihead_attention(ch03):
    torch.manual_seed(2)
    module = ch03.MultiHeadAttention(d_in=8, d_out=8, context_length=6, dropout=0.0, num_heads=2, qkv_bias=True).eval()
    torch_mha = torch.nn.MultiheadAttention(8, 2, bias=True, batch_first=True).eval()
    with torch.no_grad():
        torch_mha.in_proj_weight.copy_(torch.cat([module.W_query.weight, module.W_key.weight, module.W_value.weight]))
        torch_mha.in_proj_bias.copy_(torch.cat([module.W_query.bias, module.W_key.bias, module.W_value.bias]))
        torch_mha.out_proj.weight.copy_(module.out_proj.weight)
        torch_mha.out_proj.bias.copy_(module.out_proj.bias)
    x = torch.randn(3, 6, 8)
    future = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    expected, _ = torch_mha(x, x, x, attn_mask=future, need_weights=False)
    torch.testing.assert_close(module(x), expected)


def test_wrapper_equals_its_heads_side_by_side(ch03):
    torch.manual_seed(3)
    wrapper = ch03.MultiHeadAttentionWrapper(d_in=4, d_out=3, context_length=5, dropout=0.0, num_heads=2).eval()
    x = torch.randn(2, 5, 4)
    expected = torch.cat(
        [F.scaled_dot_product_attention(h.W_query(x), h.W_key(x), h.W_value(x), is_causal=True) for h in wrapper.heads],
        dim=-1,
    )
    torch.testing.assert_close(wrapper(x), expected)


def test_self_attention_v1_equals_v2_with_transposed_weights(ch03):
    torch.manual_seed(4)
    v2 = ch03.SelfAttention_v2(5, 3)
    v1 = ch03.SelfAttention_v1(5, 3)
    with torch.no_grad():
        for name in ("W_query", "W_key", "W_value"):
            getattr(v1, name).copy_(getattr(v2, name).weight.T)
    x = torch.randn(6, 5)
    torch.testing.assert_close(v1(x), v2(x))
    expected = F.scaled_dot_product_attention(v2.W_query(x)[None], v2.W_key(x)[None], v2.W_value(x)[None])[0]
    torch.testing.assert_close(v2(x), expected)
