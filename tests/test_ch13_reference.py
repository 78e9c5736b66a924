"""The chapter 13 reference agrees with independent implementations: the online softmax with
torch.softmax and torch.logsumexp; the tiled attention, forward and gradients, with PyTorch's
scaled_dot_product_attention; its peak memory grows linearly with the length while plain attention's
grows quadratically; the sliding-window layer with SDPA under the window mask, and cached generation
with uncached generation; RoPE scaling with Hugging Face transformers' ROPE_INIT_FUNCTIONS; ALiBi with
BLOOM's build_alibi_tensor.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from autograder import paths
from autograder.checks.test_ch13 import LiveMemory, build_window_lm, generate_both_ways


@pytest.fixture(scope="module")
def ch13():
    if not paths.solution_notebook("ch13").exists():
        pytest.skip("needs solutions/ch13")
    import previous_chapters

    return previous_chapters.chapter("ch13").namespace


@pytest.mark.parametrize("shift", [0.0, 1000.0, -1000.0])
@pytest.mark.parametrize("block_size", [1, 7, 64])
def test_online_softmax_matches_torch_softmax(ch13, shift, block_size):
    gen = torch.Generator().manual_seed(block_size)
    scores = torch.randn(3, 4, 50, generator=gen) * 3 + shift
    values = torch.randn(3, 4, 50, 5, generator=gen)
    out, lse = ch13["online_softmax_weighted_sum"](scores, values, block_size)
    expected = (torch.softmax(scores, dim=-1).unsqueeze(-2) @ values).squeeze(-2)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1), atol=1e-4, rtol=1e-6)


def test_online_softmax_handles_masked_leading_blocks(ch13):
    scores = torch.randn(2, 20)
    scores[0, :15] = -torch.inf
    values = torch.randn(20, 3)
    out, lse = ch13["online_softmax_weighted_sum"](scores, values, 4)
    torch.testing.assert_close(out, torch.softmax(scores, dim=-1) @ values)
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1))


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize(("n", "q_block", "k_block"), [(37, 8, 4), (29, 4, 8), (5, 16, 16), (64, 16, 16)])
def test_flash_attention_matches_sdpa_forward_and_gradients(ch13, is_causal, n, q_block, k_block):
    gen = torch.Generator().manual_seed(n)
    Q, K, V = (torch.randn(2, 3, n, 16, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grad = torch.randn(2, 3, n, 16, generator=gen, dtype=torch.float64)
    out = ch13["FlashAttention2"].apply(Q, K, V, is_causal, q_block, k_block)
    expected = F.scaled_dot_product_attention(Q, K, V, is_causal=is_causal)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out, (Q, K, V), grad)
    expected_grads = torch.autograd.grad(expected, (Q, K, V), grad)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    _, lse = ch13["flash_attention_forward"](Q, K, V, is_causal, q_block, k_block)
    scores = Q @ K.transpose(-2, -1) / math.sqrt(16)
    if is_causal:
        scores = scores.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), -torch.inf)
    torch.testing.assert_close(lse, torch.logsumexp(scores, dim=-1))


def test_flash_attention_with_fewer_queries_than_keys(ch13):
    Q, K, V = torch.randn(2, 13, 8), torch.randn(2, 40, 8), torch.randn(2, 40, 8)
    out, _ = ch13["flash_attention_forward"](Q, K, V, False, 4, 16)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(Q, K, V), atol=1e-5, rtol=1e-5)


def test_flash_attention_saves_exactly_q_k_v_o_and_l(ch13):
    Q, K, V = (torch.randn(1, 33, 8, requires_grad=True) for _ in range(3))
    out = ch13["FlashAttention2"].apply(Q, K, V, True, 8, 8)
    saved = out.grad_fn.saved_tensors
    assert [tuple(t.shape) for t in saved] == [(1, 33, 8)] * 4 + [(1, 33)]
    for original, kept in zip((Q, K, V, out), saved[:4], strict=True):
        assert torch.equal(original.detach(), kept)


def _peak(attention, n):
    Q, K, V = (torch.randn(1, n, 16, requires_grad=True) for _ in range(3))
    with LiveMemory() as memory:
        attention(Q, K, V).sum().backward()
    return memory.peak, memory.largest


def test_flash_attention_memory_grows_linearly_and_plain_attention_quadratically(ch13):
    def flash(Q, K, V):
        return ch13["FlashAttention2"].apply(Q, K, V, True, 32, 32)

    def plain(Q, K, V):
        return F.scaled_dot_product_attention(Q, K, V, attn_mask=torch.ones(Q.shape[1], Q.shape[1]).tril().bool())

    (flash_small, _), (flash_large, flash_largest) = _peak(flash, 256), _peak(flash, 1024)
    (plain_small, _), (plain_large, _) = _peak(plain, 256), _peak(plain, 1024)
    assert flash_large / flash_small < 5  # 4x the tokens: about 4x the memory
    assert plain_large / plain_small > 12  # about 16x
    assert flash_largest < 1024 * 1024


def test_sliding_window_layer_matches_sdpa_with_the_window_mask(ch13):
    torch.manual_seed(0)
    layer = ch13["SlidingWindowAttention"](8, 12, 64, 0.0, 3, 4).eval()
    x = torch.randn(2, 19, 8)
    heads = [linear(x).view(2, 19, 3, 4).transpose(1, 2) for linear in (layer.W_query, layer.W_key, layer.W_value)]
    mask = ch13["sliding_window_mask"](19, 4)
    context = F.scaled_dot_product_attention(*heads, attn_mask=mask).transpose(1, 2).reshape(2, 19, 12)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer.out_proj(context))
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(ch13["sliding_window_mask"](4, 2), expected)


def test_cached_generation_equals_uncached_generation(ch13):
    config = {"d": 16, "vocab_size": 30, "context_length": 48, "num_heads": 4, "window_size": 3, "num_layers": 3}
    torch.manual_seed(3)
    model = build_window_lm(ch13["SlidingWindowAttention"], config)
    result = generate_both_ways(model, torch.randint(0, 30, (3, 4)), 30)
    assert torch.equal(result["cached"], result["uncached"])
    assert result["largest_cache"] == 3


def _rope_config(rope_type, head_dim, theta, factor, **extra):
    from transformers import LlamaConfig

    parameters = {"rope_type": rope_type, "rope_theta": theta, "factor": factor, **extra}
    return LlamaConfig(
        hidden_size=head_dim * 4, num_attention_heads=4, max_position_embeddings=4096, rope_parameters=parameters
    )


ROPE_SETTINGS = [(64, 10_000.0, 4.0), (128, 500_000.0, 8.0), (32, 10_000.0, 2.5), (16, 1_000_000.0, 16.0)]


@pytest.mark.parametrize(("head_dim", "theta", "factor"), ROPE_SETTINGS)
def test_rope_scaling_matches_transformers(ch13, head_dim, theta, factor):
    rope_utils = pytest.importorskip("transformers.modeling_rope_utils")
    init = rope_utils.ROPE_INIT_FUNCTIONS
    linear, _ = init["linear"](_rope_config("linear", head_dim, theta, factor), "cpu")
    torch.testing.assert_close(ch13["linear_scaled_inv_freq"](head_dim, theta, factor), linear, rtol=1e-6, atol=0)
    # "dynamic" uses factor * seq_len / max_position - (factor - 1) as its factor: that is `factor` at this length.
    seq_len = 4096 * (2 * factor - 1) / factor
    ntk, _ = init["dynamic"](_rope_config("dynamic", head_dim, theta, factor), "cpu", seq_len=seq_len)
    torch.testing.assert_close(ch13["ntk_scaled_inv_freq"](head_dim, theta, factor), ntk, rtol=1e-6, atol=0)
    for original, betas in ((2048, {}), (512, {"beta_fast": 16.0, "beta_slow": 2.0})):
        config = _rope_config("yarn", head_dim, theta, factor, original_max_position_embeddings=original, **betas)
        inv_freq, attention_factor = init["yarn"](config, "cpu")
        got, got_factor = ch13["yarn_inv_freq"](head_dim, theta, factor, original, **betas)
        torch.testing.assert_close(got, inv_freq, rtol=1e-6, atol=0)
        assert math.isclose(got_factor, attention_factor, rel_tol=1e-9)


@pytest.mark.parametrize("num_heads", [8, 12, 16, 1, 6, 24])
def test_alibi_matches_bloom(ch13, num_heads):
    bloom = pytest.importorskip("transformers.models.bloom.modeling_bloom")
    n = 9
    expected = bloom.build_alibi_tensor(torch.ones(1, n), num_heads, torch.float32)  # (heads, 1, n): slope * j
    torch.testing.assert_close(ch13["alibi_slopes"](num_heads), expected[:, 0, 1], rtol=1e-6, atol=0)
    # BLOOM adds slope * j, the course slope * (j - i): the same after a causal softmax.
    scores = torch.randn(num_heads, n, n)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    ours = torch.softmax((scores + ch13["alibi_bias"](num_heads, n)).masked_fill(~causal, -torch.inf), dim=-1)
    theirs = torch.softmax((scores + expected).masked_fill(~causal, -torch.inf), dim=-1)
    torch.testing.assert_close(ours, theirs)
