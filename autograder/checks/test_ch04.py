"""Public checks of chapter 4: the GPT architecture.

LayerNorm and GELU are compared with PyTorch's own (called by the checks, never
by the exercise); the larger modules get recorded parameters by name and must
reproduce the reference's outputs, be causal, use dropout only in train() and
pass gradients to every parameter. The attention inside comes from chapter 3's
reference (`previous_chapters`), so a chapter 3 mistake costs nothing here.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn.functional import gelu as torch_gelu
from torch.nn.functional import layer_norm as torch_layer_norm

from autograder.checks.modules import (
    call_without_grad,
    expect_causal,
    expect_eval_deterministic,
    expect_gradients_reach,
    expect_parameter_names,
    expect_recorded_outputs,
    expect_train_stochastic,
    load_parameters,
)
from autograder.checks.toy_models import WindowLanguageModel
from autograder.compare import expect, expect_close, expect_equal_tensor, expect_tensor, fail
from llmcourse.fast_init import skipped_init

layer_norm = pytest.mark.ch04_layer_norm(
    pytest.mark.forbid("torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm")
)
gelu = pytest.mark.ch04_gelu(pytest.mark.forbid("torch.nn.GELU", "torch.nn.functional.gelu"))
feed_forward = pytest.mark.ch04_feed_forward
transformer_block = pytest.mark.ch04_transformer_block
gpt_model = pytest.mark.ch04_gpt_model
generate_text_simple = pytest.mark.ch04_generate_text_simple

# Sums over 12-wide vectors in another order differ by ~1e-7; two blocks deep, by ~1e-6.
ATOL = 1e-5
GPT2_124M = {
    "vocab_size": 50257,
    "context_length": 1024,
    "emb_dim": 768,
    "n_heads": 12,
    "n_layers": 12,
    "drop_rate": 0.1,
    "qkv_bias": False,
}
GPT2_124M_PARAMETERS = 163_009_536


def _same_as_variant(actual: torch.Tensor, variants: dict[str, torch.Tensor]) -> str | None:
    """The description of the known mistake `actual` reproduces, if any."""
    for description, values in variants.items():
        if torch.allclose(actual.detach(), values, atol=ATOL, rtol=1e-4):
            return description
    return None


def _build(cls, state: dict, what: str, *args):
    return load_parameters(cls(*args), state, what).eval()


# ---------------------------------------------------------------- ch04.layer_norm


def _layer_norm_inputs() -> torch.Tensor:
    """(3, 4, 10) rows of very different spreads, down to a variance of 1e-4, where eps shows."""
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(3, 4, 10, generator=generator)
    spreads = torch.tensor([5.0, 1.0, 0.1, 0.01]).view(1, 4, 1)
    # Offsets stay small next to the spreads: float32 loses the deviations of a tight row far from 0.
    return x * spreads + torch.randn(3, 4, 1, generator=generator) * 0.5


@layer_norm
def test_layer_norm_starts_as_identity_scale_and_shift(sub):
    """scale (ones) and shift (zeros) are (emb_dim,) parameters"""
    norm = sub.LayerNorm(10)
    expect_parameter_names(norm, {"scale": torch.ones(10), "shift": torch.zeros(10)}, "LayerNorm(10)")
    expect(torch.equal(norm.scale.detach(), torch.ones(10)), "LayerNorm.scale should start as ones")
    expect(torch.equal(norm.shift.detach(), torch.zeros(10)), "LayerNorm.shift should start as zeros")


@layer_norm
def test_layer_norm_matches_pytorch(sub):
    """same values as PyTorch's layer norm (eps 1e-5, biased variance), with learned scale and shift"""
    x = _layer_norm_inputs()
    generator = torch.Generator().manual_seed(12)
    scale, shift = torch.randn(10, generator=generator), torch.randn(10, generator=generator)
    norm = load_parameters(sub.LayerNorm(10), {"scale": scale, "shift": shift}, "LayerNorm(10)")
    with torch.no_grad():
        out = norm(x.clone())
    expected = torch_layer_norm(x, (10,), scale, shift, eps=1e-5)
    # The tightest rows (variance 1e-4, offset ~0.5) lose ~1e-5 to float32 whichever way the variance is computed.
    expect_tensor(out, "LayerNorm output", shape=x.shape)
    centred = x - x.mean(-1, keepdim=True)
    mistake = _same_as_variant(
        out,
        {
            "the unbiased variance (divides by n - 1); use unbiased=False": scale
            * centred
            / torch.sqrt(x.var(-1, keepdim=True) + 1e-5)
            + shift,
            "scale and shift swapped": shift * torch_layer_norm(x, (10,), eps=1e-5) + scale,
            "eps added outside the square root": scale
            * centred
            / (x.var(-1, keepdim=True, unbiased=False).sqrt() + 1e-5)
            + shift,
        },
    )
    if mistake:
        fail(f"LayerNorm uses {mistake}")
    expect_close(out, expected, "LayerNorm output", atol=1e-4, rtol=1e-4)


@layer_norm
def test_layer_norm_normalises_the_last_dimension(sub):
    """every vector comes out with mean 0 and variance 1, for 2-d and 3-d inputs"""
    norm = sub.LayerNorm(6)
    for x in (torch.randn(5, 6) * 3 + 2, torch.randn(2, 3, 6) * 7 - 1):
        with torch.no_grad():
            out = norm(x)
        expect_tensor(out, "LayerNorm output", shape=x.shape)
        expect_close(
            out.mean(-1), torch.zeros(x.shape[:-1]), f"the mean of each output vector ({x.dim()}-d input)", atol=1e-5
        )
        expect_close(
            out.var(-1, unbiased=False),
            torch.ones(x.shape[:-1]),
            f"the variance of each output vector ({x.dim()}-d input)",
            atol=1e-3,
        )


@layer_norm
def test_layer_norm_gradients_reach_scale_and_shift(sub):
    """gradients reach scale and shift"""
    norm = sub.LayerNorm(8)
    expect_gradients_reach(norm, norm(torch.randn(2, 3, 8)), "LayerNorm")


# ---------------------------------------------------------------- ch04.gelu


@gelu
def test_gelu_is_the_tanh_approximation(sub):
    """GELU equals the tanh approximation from -6 to 6"""
    x = torch.linspace(-6, 6, 241)
    out = call_without_grad(sub.GELU(), x.clone())
    expect_tensor(out, "GELU()(x)", shape=x.shape)
    mistake = _same_as_variant(
        out,
        {
            "the exact erf form; the exercise asks for GPT-2's tanh approximation": torch_gelu(x),
            "ReLU, not GELU": torch.relu(x),
        },
    )
    if mistake:
        fail(f"GELU computes {mistake}")
    expect_close(out, torch_gelu(x, approximate="tanh"), "GELU()(x) for x in [-6, 6]", atol=ATOL)


@gelu
def test_gelu_keeps_any_shape(sub):
    """GELU works element-wise on tensors of any shape"""
    x = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(2)) * 3
    out = call_without_grad(sub.GELU(), x.clone())
    expect_close(out, torch_gelu(x, approximate="tanh"), "GELU()(x) on a 2x3x5 input", atol=ATOL)


# ---------------------------------------------------------------- ch04.feed_forward


@feed_forward
def test_feed_forward_layers(sub, recorded):
    """layers holds Linear(emb, 4 emb), GELU, Linear(4 emb, emb)"""
    module = sub.FeedForward(recorded["config"])
    expect(
        isinstance(getattr(module, "layers", None), torch.nn.Sequential),
        "FeedForward.layers should be an nn.Sequential",
    )
    expect_parameter_names(module, recorded["feed_forward"]["state"], "FeedForward(cfg)")


@feed_forward
def test_feed_forward_matches_recorded(sub, recorded):
    """same weights, same outputs"""
    case = recorded["feed_forward"]
    expect_recorded_outputs(
        _build(sub.FeedForward, case["state"], "FeedForward", recorded["config"]), case, "FeedForward", ATOL
    )


@feed_forward
def test_feed_forward_gradients_reach_every_layer(sub, recorded):
    """gradients reach both linear layers"""
    case = recorded["feed_forward"]
    module = _build(sub.FeedForward, case["state"], "FeedForward", recorded["config"])
    expect_gradients_reach(module, module(case["inputs"][0]), "FeedForward")


# ---------------------------------------------------------------- ch04.transformer_block

BLOCK = "TransformerBlock(cfg)"


@transformer_block
def test_transformer_block_parameters(sub, recorded):
    """att, ff, norm1, norm2 with the book's parameter names, and query/key/value biases when qkv_bias is set"""
    expect_parameter_names(sub.TransformerBlock(recorded["config"]), recorded["block"]["state"], BLOCK)
    with_bias = {**recorded["config"], "qkv_bias": True}
    expect_parameter_names(
        sub.TransformerBlock(with_bias), recorded["block_with_qkv_bias"], f"{BLOCK} with qkv_bias=True"
    )


@transformer_block
def test_transformer_block_matches_recorded(sub, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than the context"""
    case = recorded["block"]
    expect_recorded_outputs(_build(sub.TransformerBlock, case["state"], BLOCK, recorded["config"]), case, BLOCK, ATOL)


@transformer_block
def test_transformer_block_is_causal(sub, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    case = recorded["block"]
    expect_causal(
        _build(sub.TransformerBlock, case["state"], BLOCK, recorded["config"]), case["inputs"][0], torch.randn, BLOCK
    )


@transformer_block
def test_transformer_block_dropout_only_in_training(sub, recorded):
    """eval() is deterministic; train() with drop_rate 0.5 is not"""
    case = recorded["block"]
    module = _build(sub.TransformerBlock, case["state"], BLOCK, recorded["config"])
    expect_eval_deterministic(module, case["inputs"][0], BLOCK)
    expect_train_stochastic(module, case["inputs"][0], BLOCK)


@transformer_block
def test_transformer_block_drops_each_sublayer_output(sub, recorded):
    """with drop_rate 1.0 in train(), both sublayer outputs are dropped and the block returns its input"""
    inputs = recorded["block"]["inputs"][0]
    module = sub.TransformerBlock({**recorded["config"], "drop_rate": 1.0}).train()
    out = call_without_grad(module, inputs)
    expect_close(
        out,
        inputs,
        f"{BLOCK} with drop_rate 1.0 in train() (every sublayer output dropped, only the shortcuts left)",
        atol=ATOL,
    )


@transformer_block
def test_transformer_block_training_step_matches_recorded(sub, recorded):
    """in train() from the same seed, the same dropout masks fall in the same places (attention weights, then each sublayer output)"""
    case = recorded["block"]
    module = _build(sub.TransformerBlock, case["state"], BLOCK, recorded["config"]).train()
    torch.manual_seed(recorded["block_train"]["seed"])
    out = call_without_grad(module, case["inputs"][0])
    expect_close(out, recorded["block_train"]["output"], f"{BLOCK} output in train() mode from a fixed seed", atol=ATOL)


@transformer_block
def test_transformer_block_gradients_reach_every_parameter(sub, recorded):
    """gradients reach attention, feed-forward and both norms"""
    case = recorded["block"]
    module = _build(sub.TransformerBlock, case["state"], BLOCK, recorded["config"])
    expect_gradients_reach(module, module(case["inputs"][0]), BLOCK)


# ---------------------------------------------------------------- ch04.gpt_model

GPT = "GPTModel(cfg)"


@gpt_model
def test_gpt_model_has_124m_configuration_parameter_count(sub):
    """GPT_CONFIG_124M gives 163,009,536 parameters (separate output head)"""
    with skipped_init():
        model = sub.GPTModel(dict(GPT2_124M))
    count = sum(p.numel() for p in model.parameters())
    if count == GPT2_124M_PARAMETERS:
        return
    tied = GPT2_124M_PARAMETERS - GPT2_124M["vocab_size"] * GPT2_124M["emb_dim"]
    if count == tied:
        fail(
            f"GPTModel(GPT_CONFIG_124M) has {count:,} parameters: out_head shares tok_emb's weights; "
            f"this chapter's model keeps its own out_head ({GPT2_124M_PARAMETERS:,} parameters)"
        )
    fail(
        f"GPTModel(GPT_CONFIG_124M) has {count:,} parameters; expected {GPT2_124M_PARAMETERS:,} "
        f"(off by {count - GPT2_124M_PARAMETERS:+,})"
    )


@gpt_model
def test_gpt_model_state_dict_uses_the_book_names(sub, recorded):
    """state-dict keys are the book's (tok_emb, pos_emb, trf_blocks.N..., final_norm, out_head)"""
    model = sub.GPTModel(recorded["config"])
    expect_parameter_names(model, recorded["gpt"]["state"], GPT)
    expected = set(recorded["gpt_state_keys"])
    extra = [key for key in model.state_dict() if key not in expected and ".att." not in key]
    if extra:
        fail(
            f"{GPT}.state_dict() has an unexpected entry '{extra[0]}', so the book's checkpoints would not load; "
            "register it with persistent=False or compute it in forward"
        )


@gpt_model
def test_gpt_model_matches_recorded(sub, recorded):
    """same weights, same logits in eval(), also for inputs shorter than the context"""
    case = recorded["gpt"]
    expect_recorded_outputs(_build(sub.GPTModel, case["state"], GPT, recorded["config"]), case, GPT, ATOL)


@gpt_model
def test_gpt_model_is_causal(sub, recorded):
    """logits at positions <= t ignore the tokens after t"""
    case = recorded["gpt"]
    vocab_size = recorded["config"]["vocab_size"]
    expect_causal(
        _build(sub.GPTModel, case["state"], GPT, recorded["config"]),
        case["inputs"][0],
        lambda shape: torch.randint(0, vocab_size, shape),
        GPT,
    )


@gpt_model
def test_gpt_model_dropout_only_in_training(sub, recorded):
    """eval() is deterministic; train() with drop_rate 0.5 is not"""
    case = recorded["gpt"]
    model = _build(sub.GPTModel, case["state"], GPT, recorded["config"])
    expect_eval_deterministic(model, case["inputs"][0], GPT)
    expect_train_stochastic(model, case["inputs"][0], GPT)


@gpt_model
def test_gpt_model_drops_the_embeddings(sub, recorded):
    """with drop_rate 1.0 in train(), the embeddings (token plus position) are dropped: every position gets the same logits"""
    model = sub.GPTModel({**recorded["config"], "drop_rate": 1.0}).train()
    logits = call_without_grad(model, recorded["gpt"]["inputs"][0])
    expect_tensor(logits, f"{GPT} logits", shape=recorded["gpt"]["outputs"][0].shape)
    expect_close(
        logits,
        logits[:1, :1].expand_as(logits),
        f"{GPT} logits with drop_rate 1.0 in train() (drop_emb applies to the sum of token and position embeddings)",
        atol=ATOL,
    )


@gpt_model
def test_gpt_model_gradients_reach_every_parameter(sub, recorded):
    """gradients reach every parameter"""
    case = recorded["gpt"]
    model = _build(sub.GPTModel, case["state"], GPT, recorded["config"])
    expect_gradients_reach(model, model(case["inputs"][0]), GPT)


# ---------------------------------------------------------------- ch04.generate_text_simple


def _window_model(case: dict) -> WindowLanguageModel:
    return WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["seed"])


@generate_text_simple
def test_generate_text_simple_matches_recorded(sub, recorded):
    """greedy tokens, token for token, from a model with a 4-token context"""
    case = recorded["generate"]
    out = sub.generate_text_simple(
        _window_model(case), case["prompts"].clone(), case["max_new_tokens"], case["context_size"]
    )
    expect_equal_tensor(out, case["generated"], "generate_text_simple(model, idx, 7, context_size=4)")


@generate_text_simple
def test_generate_text_simple_extends_the_prompt(sub, recorded):
    """the result is the prompt followed by max_new_tokens new ids"""
    case = recorded["generate"]
    prompts = case["prompts"]
    out = sub.generate_text_simple(_window_model(case), prompts.clone(), 3, case["context_size"])
    expect_tensor(out, "generate_text_simple(...)", shape=(prompts.shape[0], prompts.shape[1] + 3))
    expect_equal_tensor(
        out[:, : prompts.shape[1]], prompts, "the first tokens of generate_text_simple(...) (the prompt)"
    )
    same = sub.generate_text_simple(_window_model(case), prompts.clone(), 0, case["context_size"])
    expect_equal_tensor(same, prompts, "generate_text_simple(..., max_new_tokens=0)")
