"""Public checks of chapter 4: the GPT architecture.

LayerNorm and GELU are compared with PyTorch's own (called by the checks, never
by the exercise); the larger modules get recorded parameters by name and must
reproduce the reference's outputs, be causal, use dropout only in train() and only
where the book puts it (watched through hooks on one training step), and pass
gradients to every parameter; generation leaves the model's mode to its caller. The attention inside comes from chapter 3's
reference (`previous_chapters`), so a chapter 3 mistake costs nothing here.

Every check is split (`autograder.split`): its produce step runs the submission
and returns plain data, and its compare step decides on that data alone.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.functional import gelu as torch_gelu
from torch.nn.functional import layer_norm as torch_layer_norm

from autograder.checks.modules import (
    call_without_grad,
    causal_probe,
    eval_twice,
    expect_causal,
    expect_eval_deterministic,
    expect_gradients_reach,
    expect_parameter_shapes,
    expect_recorded_outputs,
    expect_train_stochastic,
    gradient_probe,
    load_parameters,
    parameter_shapes,
    recorded_outputs,
    train_twice,
)
from autograder.checks.toy_models import WindowLanguageModel
from autograder.compare import expect, expect_close, expect_equal_tensor, expect_list, expect_tensor, fail
from autograder.split import split
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


def _expect_gradients_reach_every_parameter(probe: dict, expected_names, what: str) -> None:
    """Compare: every parameter in `expected_names` got a gradient in `probe` (`gradient_probe`), and so
    did any further parameter the probe names (in the module's order, as a one-process check saw them)."""
    names = list(expected_names)
    if isinstance(probe, dict):
        names = [*probe, *(name for name in names if name not in probe)]
    expect_gradients_reach(probe, names, what)


# ---------------------------------------------------------------- ch04.layer_norm


def _layer_norm_inputs() -> torch.Tensor:
    """(3, 4, 10) rows of very different spreads, down to a variance of 1e-4, where eps shows."""
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(3, 4, 10, generator=generator)
    spreads = torch.tensor([5.0, 1.0, 0.1, 0.01]).view(1, 4, 1)
    # Offsets stay small next to the spreads: float32 loses the deviations of a tight row far from 0.
    return x * spreads + torch.randn(3, 4, 1, generator=generator) * 0.5


def _layer_norm_scale_and_shift() -> tuple[torch.Tensor, torch.Tensor]:
    """The learned (10,) scale and shift that `test_layer_norm_matches_pytorch` loads."""
    generator = torch.Generator().manual_seed(12)
    return torch.randn(10, generator=generator), torch.randn(10, generator=generator)


def _fresh_layer_norm(sub):
    norm = sub.LayerNorm(10)
    return {
        "shapes": parameter_shapes(norm, "LayerNorm(10)"),
        "scale": getattr(norm, "scale", None),
        "shift": getattr(norm, "shift", None),
    }


@layer_norm
@split(produce=_fresh_layer_norm)
def test_layer_norm_starts_as_identity_scale_and_shift(outputs):
    """scale (ones) and shift (zeros) are (emb_dim,) parameters"""
    expect_parameter_shapes(outputs["shapes"], {"scale": torch.ones(10), "shift": torch.zeros(10)}, "LayerNorm(10)")
    scale, shift = outputs["scale"], outputs["shift"]
    expect(
        isinstance(scale, torch.Tensor) and torch.equal(scale, torch.ones(10)), "LayerNorm.scale should start as ones"
    )
    expect(
        isinstance(shift, torch.Tensor) and torch.equal(shift, torch.zeros(10)), "LayerNorm.shift should start as zeros"
    )


def _learned_layer_norm_output(sub):
    scale, shift = _layer_norm_scale_and_shift()
    norm = load_parameters(sub.LayerNorm(10), {"scale": scale, "shift": shift}, "LayerNorm(10)")
    return call_without_grad(norm, _layer_norm_inputs())


@layer_norm
@split(produce=_learned_layer_norm_output)
def test_layer_norm_matches_pytorch(outputs):
    """same values as PyTorch's layer norm (eps 1e-5, biased variance), with learned scale and shift"""
    x = _layer_norm_inputs()
    scale, shift = _layer_norm_scale_and_shift()
    expected = torch_layer_norm(x, (10,), scale, shift, eps=1e-5)
    # The tightest rows (variance 1e-4, offset ~0.5) lose ~1e-5 to float32 whichever way the variance is computed.
    expect_tensor(outputs, "LayerNorm output", shape=x.shape)
    centred = x - x.mean(-1, keepdim=True)
    mistake = _same_as_variant(
        outputs,
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
            "the variance around zero, mean(x ** 2), not around the mean": scale
            * centred
            / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5)
            + shift,
        },
    )
    if mistake:
        fail(f"LayerNorm uses {mistake}")
    expect_close(outputs, expected, "LayerNorm output", atol=1e-4, rtol=1e-4)


# (shape, spread, offset) of the inputs to LayerNorm(6): one 2-d and one 3-d, far from mean 0 and variance 1.
_SPREAD_INPUTS = (((5, 6), 3.0, 2.0), ((2, 3, 6), 7.0, -1.0))


def _normalised_outputs(sub):
    norm = sub.LayerNorm(6)
    return [call_without_grad(norm, torch.randn(shape) * spread + offset) for shape, spread, offset in _SPREAD_INPUTS]


@layer_norm
@split(produce=_normalised_outputs)
def test_layer_norm_normalises_the_last_dimension(outputs):
    """every vector comes out with mean 0 and variance 1, for 2-d and 3-d inputs"""
    expect_list(outputs, len(_SPREAD_INPUTS), "the LayerNorm outputs")
    for (shape, _, _), out in zip(_SPREAD_INPUTS, outputs, strict=True):
        expect_tensor(out, "LayerNorm output", shape=shape)
        expect_close(
            out.mean(-1), torch.zeros(shape[:-1]), f"the mean of each output vector ({len(shape)}-d input)", atol=1e-5
        )
        expect_close(
            out.var(-1, unbiased=False),
            torch.ones(shape[:-1]),
            f"the variance of each output vector ({len(shape)}-d input)",
            atol=1e-3,
        )


def _layer_norm_gradients(sub):
    norm = sub.LayerNorm(8)
    return gradient_probe(norm, norm(torch.randn(2, 3, 8)), "LayerNorm")


@layer_norm
@split(produce=_layer_norm_gradients)
def test_layer_norm_gradients_reach_scale_and_shift(outputs):
    """gradients reach scale and shift"""
    _expect_gradients_reach_every_parameter(outputs, ("scale", "shift"), "LayerNorm")


# ---------------------------------------------------------------- ch04.gelu


def _gelu_range() -> torch.Tensor:
    """(241,) points from -6 to 6, 0.05 apart."""
    return torch.linspace(-6, 6, 241)


def _gelu_block() -> torch.Tensor:
    """A (2, 3, 5) input, spread over about [-9, 9]."""
    return torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(2)) * 3


def _gelu_on_range(sub):
    return call_without_grad(sub.GELU(), _gelu_range())


@gelu
@split(produce=_gelu_on_range)
def test_gelu_is_the_tanh_approximation(outputs):
    """GELU equals the tanh approximation from -6 to 6"""
    x = _gelu_range()
    expect_tensor(outputs, "GELU()(x)", shape=x.shape)
    mistake = _same_as_variant(
        outputs,
        {
            "the exact erf form; the exercise asks for GPT-2's tanh approximation": torch_gelu(x),
            "ReLU, not GELU": torch.relu(x),
            "sqrt(2) / pi in place of sqrt(2 / pi)": 0.5
            * x
            * (1 + torch.tanh(2**0.5 / torch.pi * (x + 0.044715 * x**3))),
        },
    )
    if mistake:
        fail(f"GELU computes {mistake}")
    expect_close(outputs, torch_gelu(x, approximate="tanh"), "GELU()(x) for x in [-6, 6]", atol=ATOL)


def _gelu_on_block(sub):
    return call_without_grad(sub.GELU(), _gelu_block())


@gelu
@split(produce=_gelu_on_block)
def test_gelu_keeps_any_shape(outputs):
    """GELU works element-wise on tensors of any shape"""
    expect_close(outputs, torch_gelu(_gelu_block(), approximate="tanh"), "GELU()(x) on a 2x3x5 input", atol=ATOL)


# ---------------------------------------------------------------- ch04.feed_forward


def _feed_forward_layout(sub, recorded):
    module = sub.FeedForward(recorded["config"])
    return {
        "layers_is_sequential": isinstance(getattr(module, "layers", None), torch.nn.Sequential),
        "shapes": parameter_shapes(module, "FeedForward(cfg)"),
    }


@feed_forward
@split(produce=_feed_forward_layout)
def test_feed_forward_layers(outputs, recorded):
    """layers holds Linear(emb, 4 emb), GELU, Linear(4 emb, emb)"""
    expect(outputs["layers_is_sequential"] is True, "FeedForward.layers should be an nn.Sequential")
    expect_parameter_shapes(outputs["shapes"], recorded["feed_forward"]["state"], "FeedForward(cfg)")


def _feed_forward_outputs(sub, recorded):
    case = recorded["feed_forward"]
    return recorded_outputs(_build(sub.FeedForward, case["state"], "FeedForward", recorded["config"]), case)


@feed_forward
@split(produce=_feed_forward_outputs)
def test_feed_forward_matches_recorded(outputs, recorded):
    """same weights, same outputs"""
    expect_recorded_outputs(outputs, recorded["feed_forward"], "FeedForward", ATOL)


def _feed_forward_gradients(sub, recorded):
    case = recorded["feed_forward"]
    module = _build(sub.FeedForward, case["state"], "FeedForward", recorded["config"])
    return gradient_probe(module, module(case["inputs"][0]), "FeedForward")


@feed_forward
@split(produce=_feed_forward_gradients)
def test_feed_forward_gradients_reach_every_layer(outputs, recorded):
    """gradients reach both linear layers"""
    _expect_gradients_reach_every_parameter(outputs, recorded["feed_forward"]["state"], "FeedForward")


# ---------------------------------------------------------------- ch04.transformer_block

BLOCK = "TransformerBlock(cfg)"


def _recorded_block(sub, recorded):
    """The submission's TransformerBlock with the recorded parameters, in eval()."""
    return _build(sub.TransformerBlock, recorded["block"]["state"], BLOCK, recorded["config"])


def _block_parameter_shapes(sub, recorded):
    return {
        "plain": parameter_shapes(sub.TransformerBlock(recorded["config"]), BLOCK),
        "qkv_bias": parameter_shapes(
            sub.TransformerBlock({**recorded["config"], "qkv_bias": True}), f"{BLOCK} with qkv_bias=True"
        ),
    }


@transformer_block
@split(produce=_block_parameter_shapes)
def test_transformer_block_parameters(outputs, recorded):
    """att, ff, norm1, norm2 with the book's parameter names, and query/key/value biases when qkv_bias is set"""
    expect_parameter_shapes(outputs["plain"], recorded["block"]["state"], BLOCK)
    expect_parameter_shapes(outputs["qkv_bias"], recorded["block_with_qkv_bias"], f"{BLOCK} with qkv_bias=True")


def _block_with_silent_feed_forward(sub, recorded):
    """The recorded block with the feed-forward output layer zeroed, so that ff(...) is 0: its output in
    eval(), and what its attention sublayer returned (None where att is not called as a module)."""
    state = dict(recorded["block"]["state"])
    for name in ("ff.layers.2.weight", "ff.layers.2.bias"):
        state[name] = torch.zeros_like(state[name])
    module = _build(sub.TransformerBlock, state, BLOCK, recorded["config"])
    seen = []
    att = getattr(module, "att", None)
    handle = (
        att.register_forward_hook(lambda _m, _args, out: seen.append(out) if isinstance(out, torch.Tensor) else None)
        if isinstance(att, torch.nn.Module)
        else None
    )
    try:
        out = call_without_grad(module, recorded["block"]["inputs"][0])
    finally:
        if handle is not None:
            handle.remove()
    return {"out": out, "att": seen[0] if seen else None}


@transformer_block
@split(produce=_block_with_silent_feed_forward)
def test_transformer_block_shortcuts_carry_the_attention_result(outputs, recorded):
    """with the feed-forward sublayer silenced, the block returns its input plus the attention output: the second shortcut starts from the first one's result"""
    x = recorded["block"]["inputs"][0]
    out, att = outputs["out"], outputs["att"]
    what = f"{BLOCK} with the feed-forward output layer zeroed (ff(...) = 0), in eval(),"
    expect_tensor(out, f"{BLOCK} output", shape=tuple(x.shape))
    if att is None:
        return  # att was not called as a module: nothing to see here; the recorded outputs judge the block
    expect_tensor(att, f"the output of {BLOCK}.att", shape=tuple(x.shape))
    out, att, x = out.double(), att.double(), x.double()
    if torch.allclose(out, x + att, atol=ATOL):
        return
    if torch.allclose(out, x, atol=ATOL):
        fail(
            f"{what} returns its input unchanged: the attention result is lost. The feed-forward shortcut "
            "should start from x + attention output (update shortcut after the first sublayer), not from the block's input"
        )
    if torch.allclose(out, att, atol=ATOL):
        fail(f"{what} returns the attention output alone: there is no shortcut around the attention sublayer")
    if torch.allclose(out, torch.zeros_like(out), atol=ATOL):
        fail(f"{what} returns zeros: there is no shortcut around the feed-forward sublayer")
    fail(f"{what} should return its input plus the attention sublayer's output; it returns something else")


def _block_outputs(sub, recorded):
    return recorded_outputs(_recorded_block(sub, recorded), recorded["block"])


@transformer_block
@split(produce=_block_outputs)
def test_transformer_block_matches_recorded(outputs, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than the context"""
    expect_recorded_outputs(outputs, recorded["block"], BLOCK, ATOL)


def _block_causal_probe(sub, recorded):
    return causal_probe(_recorded_block(sub, recorded), recorded["block"]["inputs"][0], torch.randn)


@transformer_block
@split(produce=_block_causal_probe)
def test_transformer_block_is_causal(outputs, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    expect_causal(outputs, recorded["block"]["inputs"][0].shape[1], BLOCK)


def _block_eval_and_train_calls(sub, recorded):
    module, inputs = _recorded_block(sub, recorded), recorded["block"]["inputs"][0]
    return {"eval": eval_twice(module, inputs), "train": train_twice(module, inputs)}


@transformer_block
@split(produce=_block_eval_and_train_calls)
def test_transformer_block_dropout_only_in_training(outputs):
    """eval() is deterministic; train() with drop_rate 0.5 is not"""
    expect_eval_deterministic(outputs["eval"], BLOCK)
    expect_train_stochastic(outputs["train"], BLOCK)


def _block_fully_dropped_output(sub, recorded):
    module = sub.TransformerBlock({**recorded["config"], "drop_rate": 1.0}).train()
    return call_without_grad(module, recorded["block"]["inputs"][0])


@transformer_block
@split(produce=_block_fully_dropped_output)
def test_transformer_block_drops_each_sublayer_output(outputs, recorded):
    """with drop_rate 1.0 in train(), both sublayer outputs are dropped and the block returns its input"""
    expect_close(
        outputs,
        recorded["block"]["inputs"][0],
        f"{BLOCK} with drop_rate 1.0 in train() (every sublayer output dropped, only the shortcuts left)",
        atol=ATOL,
    )


def _block_seeded_train_output(sub, recorded):
    module = _recorded_block(sub, recorded).train()
    torch.manual_seed(recorded["block_train"]["seed"])
    return call_without_grad(module, recorded["block"]["inputs"][0])


@transformer_block
@split(produce=_block_seeded_train_output)
def test_transformer_block_training_step_matches_recorded(outputs, recorded):
    """in train() from the same seed, the same dropout masks fall in the same places (attention weights, then each sublayer output)"""
    expect_close(
        outputs, recorded["block_train"]["output"], f"{BLOCK} output in train() mode from a fixed seed", atol=ATOL
    )


def _block_gradients(sub, recorded):
    module = _recorded_block(sub, recorded)
    return gradient_probe(module, module(recorded["block"]["inputs"][0]), BLOCK)


@transformer_block
@split(produce=_block_gradients)
def test_transformer_block_gradients_reach_every_parameter(outputs, recorded):
    """gradients reach attention, feed-forward and both norms"""
    _expect_gradients_reach_every_parameter(outputs, recorded["block"]["state"], BLOCK)


# ---------------------------------------------------------------- ch04.gpt_model

GPT = "GPTModel(cfg)"


def _recorded_gpt(sub, recorded):
    """The submission's GPTModel with the recorded parameters, in eval()."""
    return _build(sub.GPTModel, recorded["gpt"]["state"], GPT, recorded["config"])


def _gpt2_124m_parameter_count(sub):
    with skipped_init():
        model = sub.GPTModel(dict(GPT2_124M))
    return sum(p.numel() for p in model.parameters())


@gpt_model
@split(produce=_gpt2_124m_parameter_count)
def test_gpt_model_has_124m_configuration_parameter_count(outputs):
    """GPT_CONFIG_124M gives 163,009,536 parameters (separate output head)"""
    count = outputs
    expect(
        isinstance(count, int) and not isinstance(count, bool),
        f"the parameter count of GPTModel(GPT_CONFIG_124M) should be a whole number; got {type(count).__name__}",
    )
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


def _gpt_state_names(sub, recorded):
    model = sub.GPTModel(recorded["config"])
    return {"shapes": parameter_shapes(model, GPT), "state_keys": list(model.state_dict())}


@gpt_model
@split(produce=_gpt_state_names)
def test_gpt_model_state_dict_uses_the_book_names(outputs, recorded):
    """state-dict keys are the book's (tok_emb, pos_emb, trf_blocks.N..., final_norm, out_head)"""
    expect_parameter_shapes(outputs["shapes"], recorded["gpt"]["state"], GPT)
    state_keys = outputs["state_keys"]
    expect(isinstance(state_keys, list), f"{GPT}.state_dict(): expected its keys")
    expected = set(recorded["gpt_state_keys"])
    extra = [key for key in state_keys if key not in expected and ".att." not in str(key)]
    if extra:
        fail(
            f"{GPT}.state_dict() has an unexpected entry '{extra[0]}', so the book's checkpoints would not load; "
            "register it with persistent=False or compute it in forward"
        )


def _gpt_outputs(sub, recorded):
    return recorded_outputs(_recorded_gpt(sub, recorded), recorded["gpt"])


@gpt_model
@split(produce=_gpt_outputs)
def test_gpt_model_matches_recorded(outputs, recorded):
    """same weights, same logits in eval(), also for inputs shorter than the context"""
    expect_recorded_outputs(outputs, recorded["gpt"], GPT, ATOL)


def _gpt_causal_probe(sub, recorded):
    vocab_size = recorded["config"]["vocab_size"]
    return causal_probe(
        _recorded_gpt(sub, recorded), recorded["gpt"]["inputs"][0], lambda shape: torch.randint(0, vocab_size, shape)
    )


@gpt_model
@split(produce=_gpt_causal_probe)
def test_gpt_model_is_causal(outputs, recorded):
    """logits at positions <= t ignore the tokens after t"""
    expect_causal(outputs, recorded["gpt"]["inputs"][0].shape[1], GPT)


def _gpt_eval_and_train_calls(sub, recorded):
    model, inputs = _recorded_gpt(sub, recorded), recorded["gpt"]["inputs"][0]
    return {"eval": eval_twice(model, inputs), "train": train_twice(model, inputs)}


@gpt_model
@split(produce=_gpt_eval_and_train_calls)
def test_gpt_model_dropout_only_in_training(outputs):
    """eval() is deterministic; train() with drop_rate 0.5 is not"""
    expect_eval_deterministic(outputs["eval"], GPT)
    expect_train_stochastic(outputs["train"], GPT)


# Where dropout sits in GPTModel. In eval() every placement gives the same logits, and with drop_rate
# 1.0 dropping the embeddings looks like dropping anything after them (every position gets the same
# logits), so these checks watch one forward pass in train(): hooks record what enters and leaves each
# block trf_blocks.N and final_norm, and the compare step reads the placement off those tensors. The
# first block's input must be tok_emb + pos_emb with every value either 0 or scaled by 1 / (1 - drop_rate);
# each block's output must reach the next block, and the last one final_norm, unchanged; the logits must be
# out_head applied to final_norm's output. Unlike a bare same-seed comparison of the logits, this does
# not need the submission to draw its random numbers in the reference's order (which a correct model may
# not: its own dropout masks are only ever compared with its own embeddings). The same-seed comparison
# with the reference's logits stays as the first test, so that a correct model whose blocks or final_norm
# cannot be hooked (called through .forward, say) still passes when it draws like the reference.


def _first_tensor(args: tuple, kwargs: dict):
    return next((value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)), None)


def dropout_placement_probe(model: torch.nn.Module, inputs: torch.Tensor, seed: int, n_layers: int) -> dict:
    """Produce: `model`'s logits for `inputs` in train() from torch seed `seed`, with the input and
    output of each block trf_blocks.0 .. trf_blocks.{n_layers - 1} (first call) and of final_norm
    (last call) seen by hooks; None for a module that is missing or never called through its hooks."""
    record = {
        "block_inputs": [None] * n_layers,
        "block_outputs": [None] * n_layers,
        "final_norm_input": None,
        "final_norm_output": None,
    }

    def keep(key, index, value, first):
        if not isinstance(value, torch.Tensor):
            return
        value = value.detach().clone()
        if index is None:
            if record[key] is None or not first:
                record[key] = value
        elif record[key][index] is None or not first:
            record[key][index] = value

    watched = []
    for i in range(n_layers):
        try:
            watched.append((model.get_submodule(f"trf_blocks.{i}"), "block_inputs", "block_outputs", i, True))
        except AttributeError:
            pass
    if isinstance(getattr(model, "final_norm", None), torch.nn.Module):
        watched.append((model.final_norm, "final_norm_input", "final_norm_output", None, False))
    handles = []
    try:
        for module, into, out, index, first in watched:
            handles.append(
                module.register_forward_pre_hook(
                    lambda _m, args, kwargs, into=into, index=index, first=first: keep(
                        into, index, _first_tensor(args, kwargs), first
                    ),
                    with_kwargs=True,
                )
            )
            handles.append(
                module.register_forward_hook(
                    lambda _m, _args, output, out=out, index=index, first=first: keep(out, index, output, first)
                )
            )
        model.train()
        torch.manual_seed(seed)
        logits = call_without_grad(model, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return {"logits": logits, **record}


def _everywhere_close(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.isclose(a.double(), b.double(), atol=ATOL, rtol=1e-4)


def _dropped_out(x: torch.Tensor, kept: torch.Tensor, dropped: torch.Tensor) -> bool:
    """Every value of `x` is its `kept` or its `dropped` value, and both kinds occur."""
    is_kept, is_dropped = _everywhere_close(x, kept), _everywhere_close(x, dropped)
    return bool((is_kept | is_dropped).all() and (is_kept & ~is_dropped).any() and (is_dropped & ~is_kept).any())


def _dropout_placement_mistake(
    probe: dict, state: dict, inputs: torch.Tensor, drop_rate: float, n_layers: int, what: str
) -> tuple[str | None, bool]:
    """Compare: (the dropout mistake the hooked tensors of `dropout_placement_probe` show, or None;
    whether every block and final_norm was seen)."""
    tok = state["tok_emb.weight"][inputs]
    pos = state["pos_emb.weight"][: inputs.shape[1]].expand_as(tok)
    emb, scale = tok + pos, 1 / (1 - drop_rate)
    block_inputs, block_outputs = probe["block_inputs"], probe["block_outputs"]
    expect_list(block_inputs, n_layers, f"the inputs of the {what} blocks")
    expect_list(block_outputs, n_layers, f"the outputs of the {what} blocks")
    for kind, values in (("input", block_inputs), ("output", block_outputs)):
        for i, value in enumerate(values):
            if value is not None:
                expect_tensor(value, f"the {kind} of {what}.trf_blocks.{i} in train()", shape=tuple(emb.shape))
    norm_in, norm_out = probe["final_norm_input"], probe["final_norm_output"]
    for kind, value in (("input", norm_in), ("output", norm_out)):
        if value is not None:
            expect_tensor(value, f"the {kind} of {what}.final_norm in train()", shape=tuple(emb.shape))
    observed = all(v is not None for v in (*block_inputs, *block_outputs, norm_in, norm_out))

    elsewhere = []  # where dropout (or something else) changes the values after the first block's input
    for i in range(1, n_layers):
        before, after = block_outputs[i - 1], block_inputs[i]
        if before is not None and after is not None and not _everywhere_close(after, before).all():
            elsewhere.append(
                f"between the transformer blocks (trf_blocks.{i} does not get trf_blocks.{i - 1}'s output unchanged)"
            )
    if (
        norm_in is not None
        and block_outputs[-1] is not None
        and not _everywhere_close(norm_in, block_outputs[-1]).all()
    ):
        elsewhere.append("after the transformer blocks (final_norm does not get the last block's output unchanged)")
    if norm_out is not None:
        head = norm_out.double() @ state["out_head.weight"].double().T
        if _dropped_out(probe["logits"], head / (1 - drop_rate), torch.zeros_like(head)):
            elsewhere.append("on the logits (some are zeros, the rest scaled up)")
        elif not _everywhere_close(probe["logits"], head).all():
            elsewhere.append("after final_norm (out_head does not get final_norm's output unchanged)")

    first = block_inputs[0]
    fix = "apply drop_emb once, to tok_emb + pos_emb, before the first block"
    if first is None:
        mistake = f"{what} in train() applies dropout {elsewhere[0]}; {fix}" if elsewhere else None
        return mistake, observed
    if _everywhere_close(first, emb).all():
        if elsewhere:
            return f"{what} in train() applies dropout {elsewhere[0]} instead of to the embeddings; {fix}", observed
        return (
            f"{what} in train() does not drop out the embeddings: the first block gets tok_emb + pos_emb whole; {fix}",
            observed,
        )
    if _dropped_out(first, tok * scale + pos, pos):
        return (
            f"{what} in train() drops out the token embeddings alone, before the position embeddings are added; "
            "apply drop_emb to their sum",
            observed,
        )
    if _dropped_out(first, tok + pos * scale, tok):
        return (
            f"{what} in train() drops out the position embeddings alone, then adds the token embeddings; "
            "apply drop_emb to their sum",
            observed,
        )
    if not _dropped_out(first, emb * scale, torch.zeros_like(emb)):
        zero = first.abs() <= ATOL
        ratio = (first[~zero].double() / emb[~zero].double()) if (~zero).any() else None
        if zero.any() and ratio is not None and torch.allclose(ratio, ratio.median().expand_as(ratio), rtol=1e-3):
            factor = ratio.median().item()
            if math.isclose(factor, scale**2, rel_tol=1e-3):
                why = "dropout is applied twice to the embeddings"
            elif math.isclose(factor, 2.0, rel_tol=1e-3):
                why = "the rate is nn.Dropout's default 0.5, not drop_rate (pass it: nn.Dropout(cfg['drop_rate']))"
            else:
                why = "is drop_emb nn.Dropout(drop_rate), applied once?"
            return (
                f"{what} in train() scales the kept embedding values by {factor:.3g}, "
                f"not by 1 / (1 - drop_rate): {why}",
                observed,
            )
        return (
            f"{what} in train(): the first block's input is not tok_emb + pos_emb with dropout applied "
            "(each value either 0 or scaled by 1 / (1 - drop_rate)); "
            f"{fix}",
            observed,
        )
    if elsewhere:
        return (
            f"{what} in train() applies dropout again {elsewhere[0]}; drop_emb belongs on the embeddings only",
            observed,
        )
    return None, observed


def expect_dropout_only_on_the_embeddings(
    probe: dict,
    state: dict,
    inputs: torch.Tensor,
    config: dict,
    reference_logits: torch.Tensor,
    what: str,
) -> None:
    """Compare: in `probe` (`dropout_placement_probe` of a model with `state` and `config`, on `inputs`),
    dropout falls once, on the embeddings; `reference_logits` are the reference's from the same seed.

    Logits equal to the reference's from the same seed pass at once; otherwise the hooked tensors
    must show the placement (see the comment above `_first_tensor`)."""
    expect(isinstance(probe, dict) and "logits" in probe, f"{what} in train(): expected its logits and hooked tensors")
    logits = probe["logits"]
    expect_tensor(logits, f"{what} logits in train()", shape=tuple(reference_logits.shape))
    if torch.allclose(logits.double(), reference_logits.double(), atol=ATOL, rtol=1e-4):
        return
    mistake, observed = _dropout_placement_mistake(probe, state, inputs, config["drop_rate"], config["n_layers"], what)
    if mistake:
        fail(mistake)
    expect(
        observed,
        f"{what} logits in train() from a fixed seed differ from the expected ones, and its blocks and final_norm "
        "could not all be watched (call them as modules, block(x), not block.forward(x)); "
        "dropout belongs once on tok_emb + pos_emb, before the first block",
    )
    # Every block and final_norm was seen and dropout sits only on the embeddings: the model draws its
    # random numbers in another order than the reference, which is no mistake.


def _gpt_train_config(recorded) -> dict:
    """The recorded configuration with the training step's drop rate (not 0.5, nn.Dropout's default)."""
    return {**recorded["config"], "drop_rate": recorded["gpt_train"]["drop_rate"]}


def _gpt_dropout_probe(sub, recorded):
    model = _build(sub.GPTModel, recorded["gpt"]["state"], GPT, _gpt_train_config(recorded))
    return dropout_placement_probe(
        model, recorded["gpt"]["inputs"][0], recorded["gpt_train"]["seed"], recorded["config"]["n_layers"]
    )


@gpt_model
@split(produce=_gpt_dropout_probe)
def test_gpt_model_drops_out_only_the_embeddings(outputs, recorded):
    """in train() with drop_rate 0.3, dropout falls once, on tok_emb + pos_emb before the first block: not between the blocks, after them or on the logits"""
    expect_dropout_only_on_the_embeddings(
        outputs,
        recorded["gpt"]["state"],
        recorded["gpt"]["inputs"][0],
        _gpt_train_config(recorded),
        recorded["gpt_train"]["output"],
        GPT,
    )


def _gpt_fully_dropped_logits(sub, recorded):
    model = sub.GPTModel({**recorded["config"], "drop_rate": 1.0}).train()
    return call_without_grad(model, recorded["gpt"]["inputs"][0])


@gpt_model
@split(produce=_gpt_fully_dropped_logits)
def test_gpt_model_drops_the_embeddings(outputs, recorded):
    """with drop_rate 1.0 in train(), the embeddings (token plus position) are dropped: every position gets the same logits"""
    logits = outputs
    expect_tensor(logits, f"{GPT} logits", shape=recorded["gpt"]["outputs"][0].shape)
    expect_close(
        logits,
        logits[:1, :1].expand_as(logits),
        f"{GPT} logits with drop_rate 1.0 in train() (drop_emb applies to the sum of token and position embeddings)",
        atol=ATOL,
    )


def _gpt_gradients(sub, recorded):
    model = _recorded_gpt(sub, recorded)
    return gradient_probe(model, model(recorded["gpt"]["inputs"][0]), GPT)


@gpt_model
@split(produce=_gpt_gradients)
def test_gpt_model_gradients_reach_every_parameter(outputs, recorded):
    """gradients reach every parameter"""
    _expect_gradients_reach_every_parameter(outputs, recorded["gpt"]["state"], GPT)


# ---------------------------------------------------------------- ch04.generate_text_simple


def _window_model(case: dict) -> WindowLanguageModel:
    return WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["seed"])


def _recorded_generation(sub, recorded):
    case = recorded["generate"]
    return sub.generate_text_simple(
        _window_model(case), case["prompts"].clone(), case["max_new_tokens"], case["context_size"]
    )


@generate_text_simple
@split(produce=_recorded_generation)
def test_generate_text_simple_matches_recorded(outputs, recorded):
    """greedy tokens, token for token, from a model with a 4-token context"""
    expect_equal_tensor(
        outputs, recorded["generate"]["generated"], "generate_text_simple(model, idx, 7, context_size=4)"
    )


def generation_modes_after(generate, case: dict, steps: int) -> dict:
    """Produce: `model.training` after `generate(model, prompts, steps, context_size)`, for a window
    model the caller put in train() and one it put in eval()."""
    modes = {}
    for mode in ("train", "eval"):
        model = WindowLanguageModel(case["vocab_size"], case["context_size"], seed=case["seed"]).train(mode == "train")
        generate(model, case["prompts"].clone(), steps, case["context_size"])
        modes[mode] = model.training
    return modes


def expect_mode_left_to_the_caller(modes: dict, what: str) -> None:
    """Compare: `generation_modes_after` found each model in the mode its caller chose."""
    expect(isinstance(modes, dict), f"{what}: expected the model's mode after each call")
    expect(
        modes.get("train") is True,
        f"{what} switched a model in train() mode to eval(): leave the model's mode to the caller "
        "(a training loop that generates samples would lose its dropout)",
    )
    expect(
        modes.get("eval") is False,
        f"{what} switched a model in eval() mode to train(): leave the model's mode to the caller",
    )


def _recorded_generation_modes(sub, recorded):
    return generation_modes_after(sub.generate_text_simple, recorded["generate"], 2)


@generate_text_simple
@split(produce=_recorded_generation_modes)
def test_generate_text_simple_leaves_the_model_mode_to_the_caller(outputs):
    """a model in train() stays in train(), one in eval() stays in eval()"""
    expect_mode_left_to_the_caller(outputs, "generate_text_simple")


def _three_and_no_new_tokens(sub, recorded):
    case = recorded["generate"]
    return {
        "three": sub.generate_text_simple(_window_model(case), case["prompts"].clone(), 3, case["context_size"]),
        "none": sub.generate_text_simple(_window_model(case), case["prompts"].clone(), 0, case["context_size"]),
    }


@generate_text_simple
@split(produce=_three_and_no_new_tokens)
def test_generate_text_simple_extends_the_prompt(outputs, recorded):
    """the result is the prompt followed by max_new_tokens new ids"""
    prompts = recorded["generate"]["prompts"]
    out = outputs["three"]
    expect_tensor(out, "generate_text_simple(...)", shape=(prompts.shape[0], prompts.shape[1] + 3))
    expect_equal_tensor(
        out[:, : prompts.shape[1]], prompts, "the first tokens of generate_text_simple(...) (the prompt)"
    )
    expect_equal_tensor(outputs["none"], prompts, "generate_text_simple(..., max_new_tokens=0)")
