"""Public checks of chapter 3: attention from scratch.

Modules get the recorded parameters by name and must reproduce the reference's
outputs; on top of that come properties any correct attention has: causality,
weights that sum to 1, dropout on the weights in train() only, gradients to
every parameter, inputs shorter than the context.
"""

from __future__ import annotations

import pytest
import torch

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
from autograder.compare import expect, expect_close, expect_list, expect_tensor, fail
from autograder.split import split

# Attention is the exercise itself here: PyTorch's ready-made versions are off limits.
from_scratch = pytest.mark.forbid(
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
)


def exercise(marker_name: str):
    marker = getattr(pytest.mark, marker_name)
    return lambda check: marker(from_scratch(check))


attention_weights = exercise("ch03_attention_weights")
self_attention_v1 = exercise("ch03_self_attention_v1")
self_attention_v2 = exercise("ch03_self_attention_v2")
causal_attention = exercise("ch03_causal_attention")
multihead_wrapper = exercise("ch03_multihead_wrapper")
multihead_attention = exercise("ch03_multihead_attention")

# float32 matmuls in another order (einsum, loops, scaling before the product) differ by ~1e-7.
ATOL = 1e-5


def _build(cls, case: dict, what: str):
    """`cls(**config)` with the recorded parameters loaded, in eval() mode."""
    module = load_parameters(cls(**case["config"]), case["state"], what)
    return module.eval()


def _constant_values_input(config: dict, num_tokens: int = 7, batch: int = 2) -> torch.Tensor:
    """Inputs whose feature 0 is 1 everywhere; the other features vary, so scores vary."""
    x = torch.randn(batch, num_tokens, config["d_in"], generator=torch.Generator().manual_seed(3))
    x[..., 0] = 1.0
    return x


def _values_all_ones(linear_or_matrix) -> None:
    """Make every token's value vector all ones (for inputs from `_constant_values_input`)."""
    with torch.no_grad():
        if isinstance(linear_or_matrix, torch.nn.Linear):
            linear_or_matrix.weight.zero_()
            linear_or_matrix.weight[:, 0] = 1.0
            if linear_or_matrix.bias is not None:
                linear_or_matrix.bias.zero_()
        else:
            linear_or_matrix.zero_()
            linear_or_matrix[0, :] = 1.0


def _expect_rows_sum_to_one(row_sums: torch.Tensor, what: str) -> None:
    """row_sums: (batch, num_tokens, width), each entry the sum of one row of attention weights."""
    bad = (row_sums - 1).abs() > 1e-5
    if bad.any():
        b, t, _ = (int(i) for i in bad.nonzero()[0])
        fail(
            f"{what}: the attention weights of position {t} sum to {row_sums[b, t].min().item():.4g}, not 1 "
            "(softmax over the last dimension, after masking)"
        )


def _expect_dropout_on_weights(row_sums: torch.Tensor, p: float, what: str) -> None:
    """Train-mode row sums with all-ones values: dropout on the weights keeps each head's row constant
    across its width, and position 0 (attending only to itself) gives 0 or 1 / (1 - p)."""
    spread = (row_sums - row_sums[..., :1]).abs().max().item()
    expect(
        spread < 1e-5,
        f"{what}: in train() mode dropout zeroed single output entries; "
        "apply it to the attention weights (after the softmax), not to the output",
    )
    first = row_sums[:, 0, 0]
    ok = torch.isclose(first, torch.tensor(0.0), atol=1e-5) | torch.isclose(first, torch.tensor(1 / (1 - p)), atol=1e-5)
    if not ok.all():
        fail(
            f"{what}: in train() mode the first position's only attention weight became "
            f"{first[~ok][0].item():.4g}; with dropout {p} on the weights it is 0 or {1 / (1 - p):g} "
            "(apply nn.Dropout to the weights after the softmax, not to the scores)"
        )


# ---------------------------------------------------------------- ch03.attention_weights


def _large_scores_input() -> torch.Tensor:
    return torch.randn(5, 3, generator=torch.Generator().manual_seed(4)) * 30


def _recorded_weights(sub, recorded):
    return [sub.attention_weights(inputs.clone()) for inputs in recorded["simple_inputs"]]


@attention_weights
@split(produce=_recorded_weights)
def test_attention_weights_match_recorded(outputs, recorded):
    """attention_weights: softmax of the pairwise dot products"""
    expect_list(outputs, len(recorded["simple_inputs"]), "the attention_weights results")
    for inputs, weights, expected in zip(recorded["simple_inputs"], outputs, recorded["simple_weights"], strict=True):
        expect_tensor(weights, "attention_weights(inputs)")
        expect_close(weights, expected, f"attention_weights of a {inputs.shape[0]}x{inputs.shape[1]} input", atol=ATOL)


def _row_sum_weights(sub):
    return sub.attention_weights(torch.randn(9, 4, generator=torch.Generator().manual_seed(1)) * 3)


@attention_weights
@split(produce=_row_sum_weights)
def test_attention_weight_rows_sum_to_one(outputs):
    """each row of attention_weights is a distribution"""
    expect_tensor(outputs, "attention_weights(inputs)", shape=(9, 9))
    expect(bool((outputs >= 0).all()), "attention weights should never be negative")
    _expect_rows_sum_to_one(outputs.sum(dim=-1)[None, :, None], "attention_weights")


def _large_score_weights(sub):
    return sub.attention_weights(_large_scores_input())


@attention_weights
@split(produce=_large_score_weights)
def test_attention_weights_survive_large_scores(outputs):
    """scores in the thousands give finite weights (a softmax that subtracts the row maximum)"""
    expect_tensor(outputs, "attention_weights(inputs)", shape=(5, 5))
    expect(
        bool(torch.isfinite(outputs).all()),
        "attention_weights gives nan or inf when the dot products are large "
        "(exp overflows above ~88): use torch.softmax, or subtract each row's maximum before exp",
    )
    inputs = _large_scores_input()
    expect_close(
        outputs,
        torch.softmax(inputs @ inputs.T, dim=-1),
        "attention_weights of an input with large dot products",
        atol=ATOL,
    )


def _recorded_context(sub, recorded):
    return [sub.context_vectors(inputs.clone()) for inputs in recorded["simple_inputs"]]


@attention_weights
@split(produce=_recorded_context)
def test_context_vectors_match_recorded(outputs, recorded):
    """context_vectors: each token's attention-weighted sum of the inputs"""
    expect_list(outputs, len(recorded["simple_inputs"]), "the context_vectors results")
    for inputs, context, expected in zip(recorded["simple_inputs"], outputs, recorded["simple_context"], strict=True):
        expect_tensor(context, "context_vectors(inputs)")
        expect_close(context, expected, f"context_vectors of a {inputs.shape[0]}x{inputs.shape[1]} input", atol=ATOL)


# ---------------------------------------------------------------- ch03.self_attention_v1


@self_attention_v1
def test_self_attention_v1_has_weight_matrices(sub, recorded):
    """W_query, W_key, W_value are (d_in, d_out) parameters"""
    case = recorded["v1"]
    expect_parameter_names(sub.SelfAttention_v1(**case["config"]), case["state"], "SelfAttention_v1(5, 3)")


@self_attention_v1
def test_self_attention_v1_matches_recorded(sub, recorded):
    """same weights, same context vectors"""
    case = recorded["v1"]
    expect_recorded_outputs(
        _build(sub.SelfAttention_v1, case, "SelfAttention_v1(5, 3)"), case, "SelfAttention_v1(5, 3)", ATOL
    )


@self_attention_v1
def test_self_attention_v1_gradients_reach_every_weight(sub, recorded):
    """gradients reach W_query, W_key and W_value"""
    case = recorded["v1"]
    module = _build(sub.SelfAttention_v1, case, "SelfAttention_v1(5, 3)")
    expect_gradients_reach(module, module(case["inputs"][0]), "SelfAttention_v1")


# ---------------------------------------------------------------- ch03.self_attention_v2


@self_attention_v2
def test_self_attention_v2_has_linear_projections(sub, recorded):
    """W_query, W_key, W_value are nn.Linear layers, with biases only when qkv_bias=True"""
    for case in recorded["v2"]:
        what = f"SelfAttention_v2(5, 3, qkv_bias={case['config']['qkv_bias']})"
        expect_parameter_names(sub.SelfAttention_v2(**case["config"]), case["state"], what)


@self_attention_v2
def test_self_attention_v2_matches_recorded(sub, recorded):
    """same weights, same context vectors (with and without bias)"""
    for case in recorded["v2"]:
        what = f"SelfAttention_v2(5, 3, qkv_bias={case['config']['qkv_bias']})"
        expect_recorded_outputs(_build(sub.SelfAttention_v2, case, what), case, what, ATOL)


@self_attention_v2
def test_self_attention_v2_gradients_reach_every_weight(sub, recorded):
    """gradients reach every projection"""
    case = recorded["v2"][1]
    module = _build(sub.SelfAttention_v2, case, "SelfAttention_v2(5, 3, qkv_bias=True)")
    expect_gradients_reach(module, module(case["inputs"][0]), "SelfAttention_v2")


# ---------------------------------------------------------------- ch03.causal_attention

CAUSAL = "CausalAttention(5, 4, context_length=7, dropout=0.5)"


@causal_attention
def test_causal_attention_is_causal(sub, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    case = recorded["causal"]
    module = _build(sub.CausalAttention, case, CAUSAL)
    expect_causal(module, case["inputs"][0], torch.randn, CAUSAL)


@causal_attention
def test_causal_attention_weights_sum_to_one(sub, recorded):
    """every position's attention weights sum to 1 (values of all ones come out as ones)"""
    case = recorded["causal"]
    module = _build(sub.CausalAttention, case, CAUSAL)
    _values_all_ones(module.W_value)
    _expect_rows_sum_to_one(call_without_grad(module, _constant_values_input(case["config"])), CAUSAL)


@causal_attention
def test_causal_attention_dropout_only_in_training(sub, recorded):
    """dropout acts on the attention weights in train(); eval() is deterministic"""
    case = recorded["causal"]
    module = _build(sub.CausalAttention, case, CAUSAL)
    _values_all_ones(module.W_value)
    inputs = _constant_values_input(case["config"], batch=8)
    _expect_rows_sum_to_one(expect_eval_deterministic(module, inputs, CAUSAL), f"{CAUSAL} in eval()")
    _expect_dropout_on_weights(expect_train_stochastic(module, inputs, CAUSAL), 0.5, CAUSAL)


@causal_attention
def test_causal_attention_matches_recorded(sub, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than context_length"""
    case = recorded["causal"]
    expect_recorded_outputs(_build(sub.CausalAttention, case, CAUSAL), case, CAUSAL, ATOL)


@causal_attention
def test_causal_attention_gradients_reach_every_weight(sub, recorded):
    """gradients reach every projection"""
    case = recorded["causal"]
    module = _build(sub.CausalAttention, case, CAUSAL)
    expect_gradients_reach(module, module(case["inputs"][0]), CAUSAL)


# ---------------------------------------------------------------- ch03.multihead_wrapper

WRAPPER = "MultiHeadAttentionWrapper(5, 3, context_length=7, dropout=0.5, num_heads=3)"


@multihead_wrapper
def test_wrapper_holds_independent_heads(sub, recorded):
    """heads is a ModuleList of num_heads heads, each with its own weights"""
    case = recorded["wrapper"]
    module = sub.MultiHeadAttentionWrapper(**case["config"])
    expect(
        isinstance(getattr(module, "heads", None), torch.nn.ModuleList), f"{WRAPPER}.heads should be an nn.ModuleList"
    )
    expect(len(module.heads) == 3, f"{WRAPPER}.heads holds {len(module.heads)} heads; expected 3")
    expect_parameter_names(module, case["state"], WRAPPER)
    shared = len({id(p) for p in module.parameters()}) < len(case["state"])
    expect(not shared, f"the heads of {WRAPPER} share weights; create a new CausalAttention for each head")
    with_bias = sub.MultiHeadAttentionWrapper(**case["config"], qkv_bias=True)
    expect_parameter_names(with_bias, recorded["wrapper_with_qkv_bias"], WRAPPER.replace(")", ", qkv_bias=True)"))


@multihead_wrapper
def test_wrapper_matches_recorded(sub, recorded):
    """same weights, same outputs of width d_out * num_heads"""
    case = recorded["wrapper"]
    expect_recorded_outputs(_build(sub.MultiHeadAttentionWrapper, case, WRAPPER), case, WRAPPER, ATOL)


@multihead_wrapper
def test_wrapper_concatenates_heads_in_order(sub, recorded):
    """output columns h*d_out .. (h+1)*d_out - 1 are head h's output"""
    case = recorded["wrapper"]
    module = _build(sub.MultiHeadAttentionWrapper, case, WRAPPER)
    inputs = case["inputs"][0]
    out = call_without_grad(module, inputs)
    expect_tensor(out, f"{WRAPPER} output", shape=(*inputs.shape[:2], 9))
    for h, head in enumerate(module.heads):
        expect_close(
            out[..., 3 * h : 3 * (h + 1)],
            call_without_grad(head, inputs),
            f"output columns {3 * h}..{3 * h + 2} (head {h})",
            atol=ATOL,
        )


@multihead_wrapper
def test_wrapper_is_causal(sub, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    case = recorded["wrapper"]
    expect_causal(_build(sub.MultiHeadAttentionWrapper, case, WRAPPER), case["inputs"][0], torch.randn, WRAPPER)


# ---------------------------------------------------------------- ch03.multihead_attention


def _multihead_name(config: dict) -> str:
    return (
        f"MultiHeadAttention({config['d_in']}, {config['d_out']}, context_length={config['context_length']}, "
        f"dropout={config['dropout']}, num_heads={config['num_heads']}, qkv_bias={config['qkv_bias']})"
    )


def _identity_out_proj(module) -> None:
    with torch.no_grad():
        module.out_proj.weight.copy_(torch.eye(module.out_proj.weight.shape[0]))
        module.out_proj.bias.zero_()


@multihead_attention
def test_multihead_attention_parameters(sub, recorded):
    """W_query, W_key, W_value (biases only with qkv_bias) and out_proj"""
    for case in recorded["multihead"]:
        expect_parameter_names(sub.MultiHeadAttention(**case["config"]), case["state"], _multihead_name(case["config"]))


@multihead_attention
def test_multihead_attention_is_causal(sub, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    case = recorded["multihead"][0]
    what = _multihead_name(case["config"])
    expect_causal(_build(sub.MultiHeadAttention, case, what), case["inputs"][0], torch.randn, what)


@multihead_attention
def test_multihead_attention_weights_sum_to_one(sub, recorded):
    """every head's attention weights sum to 1 at every position"""
    case = recorded["multihead"][0]
    what = _multihead_name(case["config"])
    module = _build(sub.MultiHeadAttention, case, what)
    _values_all_ones(module.W_value)
    _identity_out_proj(module)
    _expect_rows_sum_to_one(call_without_grad(module, _constant_values_input(case["config"])), what)


@multihead_attention
def test_multihead_attention_dropout_only_in_training(sub, recorded):
    """dropout acts on the attention weights in train(); eval() is deterministic"""
    case = recorded["multihead"][1]
    what = _multihead_name(case["config"])
    module = _build(sub.MultiHeadAttention, case, what)
    _values_all_ones(module.W_value)
    _identity_out_proj(module)
    inputs = _constant_values_input(case["config"], batch=8)
    _expect_rows_sum_to_one(expect_eval_deterministic(module, inputs, what), f"{what} in eval()")
    row_sums = expect_train_stochastic(module, inputs, what)
    head_dim = case["config"]["d_out"] // case["config"]["num_heads"]
    for h in range(case["config"]["num_heads"]):
        _expect_dropout_on_weights(row_sums[..., h * head_dim : (h + 1) * head_dim], 0.5, f"{what}, head {h}")


@multihead_attention
def test_multihead_attention_matches_recorded(sub, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than context_length"""
    for case in recorded["multihead"]:
        what = _multihead_name(case["config"])
        expect_recorded_outputs(_build(sub.MultiHeadAttention, case, what), case, what, ATOL)


@multihead_attention
def test_multihead_attention_gradients_reach_every_weight(sub, recorded):
    """gradients reach every projection and out_proj"""
    case = recorded["multihead"][0]
    what = _multihead_name(case["config"])
    module = _build(sub.MultiHeadAttention, case, what)
    expect_gradients_reach(module, module(case["inputs"][0]), what)


@multihead_attention
def test_multihead_attention_rejects_indivisible_heads(sub):
    """d_out not divisible by num_heads raises an error that says so"""
    try:
        sub.MultiHeadAttention(d_in=4, d_out=10, context_length=5, dropout=0.0, num_heads=3)
    except Exception as exc:  # noqa: BLE001 - any exception type will do, if it explains itself
        expect(
            bool(str(exc).strip()),
            f"MultiHeadAttention(d_out=10, num_heads=3) raised {type(exc).__name__} "
            "without a message; say that d_out must be divisible by num_heads",
        )
        return
    fail(
        "MultiHeadAttention(d_in=4, d_out=10, ..., num_heads=3) was created without complaint; "
        "raise an error saying that d_out must be divisible by num_heads"
    )
