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

V1 = "SelfAttention_v1(5, 3)"


def _v1_shapes(sub, recorded):
    return parameter_shapes(sub.SelfAttention_v1(**recorded["v1"]["config"]), V1)


@self_attention_v1
@split(produce=_v1_shapes)
def test_self_attention_v1_has_weight_matrices(outputs, recorded):
    """W_query, W_key, W_value are (d_in, d_out) parameters"""
    expect_parameter_shapes(outputs, recorded["v1"]["state"], V1)


def _v1_outputs(sub, recorded):
    return recorded_outputs(_build(sub.SelfAttention_v1, recorded["v1"], V1), recorded["v1"])


@self_attention_v1
@split(produce=_v1_outputs)
def test_self_attention_v1_matches_recorded(outputs, recorded):
    """same weights, same context vectors"""
    expect_recorded_outputs(outputs, recorded["v1"], V1, ATOL)


def _v1_gradients(sub, recorded):
    module = _build(sub.SelfAttention_v1, recorded["v1"], V1)
    return gradient_probe(module, module(recorded["v1"]["inputs"][0]), "SelfAttention_v1")


@self_attention_v1
@split(produce=_v1_gradients)
def test_self_attention_v1_gradients_reach_every_weight(outputs, recorded):
    """gradients reach W_query, W_key and W_value"""
    expect_gradients_reach(outputs, recorded["v1"]["state"], "SelfAttention_v1")


# ---------------------------------------------------------------- ch03.self_attention_v2


def _v2_name(case: dict) -> str:
    return f"SelfAttention_v2(5, 3, qkv_bias={case['config']['qkv_bias']})"


def _v2_shapes(sub, recorded):
    return [parameter_shapes(sub.SelfAttention_v2(**case["config"]), _v2_name(case)) for case in recorded["v2"]]


@self_attention_v2
@split(produce=_v2_shapes)
def test_self_attention_v2_has_linear_projections(outputs, recorded):
    """W_query, W_key, W_value are nn.Linear layers, with biases only when qkv_bias=True"""
    expect_list(outputs, len(recorded["v2"]), "the SelfAttention_v2 parameter shapes")
    for shapes, case in zip(outputs, recorded["v2"], strict=True):
        expect_parameter_shapes(shapes, case["state"], _v2_name(case))


def _v2_outputs(sub, recorded):
    return [recorded_outputs(_build(sub.SelfAttention_v2, case, _v2_name(case)), case) for case in recorded["v2"]]


@self_attention_v2
@split(produce=_v2_outputs)
def test_self_attention_v2_matches_recorded(outputs, recorded):
    """same weights, same context vectors (with and without bias)"""
    expect_list(outputs, len(recorded["v2"]), "the SelfAttention_v2 results")
    for got, case in zip(outputs, recorded["v2"], strict=True):
        expect_recorded_outputs(got, case, _v2_name(case), ATOL)


def _v2_gradients(sub, recorded):
    case = recorded["v2"][1]
    module = _build(sub.SelfAttention_v2, case, _v2_name(case))
    return gradient_probe(module, module(case["inputs"][0]), "SelfAttention_v2")


@self_attention_v2
@split(produce=_v2_gradients)
def test_self_attention_v2_gradients_reach_every_weight(outputs, recorded):
    """gradients reach every projection"""
    expect_gradients_reach(outputs, recorded["v2"][1]["state"], "SelfAttention_v2")


# ---------------------------------------------------------------- shared by the attention modules


def _causal_probe_of(cls, case: dict, what: str) -> dict:
    return causal_probe(_build(cls, case, what), case["inputs"][0], torch.randn)


def _expect_causal_case(probe: dict, case: dict, what: str) -> None:
    expect_causal(probe, case["inputs"][0].shape[1], what)


def _gradients_of(cls, case: dict, what: str) -> dict:
    module = _build(cls, case, what)
    return gradient_probe(module, module(case["inputs"][0]), what)


def _ones_values_module(cls, case: dict, what: str, identity_out_proj: bool = False):
    """`cls` built from the case, with value vectors all ones (and out_proj the identity, if asked)."""
    module = _build(cls, case, what)
    _values_all_ones(module.W_value)
    if identity_out_proj:
        with torch.no_grad():
            module.out_proj.weight.copy_(torch.eye(module.out_proj.weight.shape[0]))
            module.out_proj.bias.zero_()
    return module


def _row_sums(cls, case: dict, what: str, identity_out_proj: bool = False) -> torch.Tensor:
    """(batch, num_tokens, d_out): with all-ones values, each entry is one row sum of attention weights."""
    module = _ones_values_module(cls, case, what, identity_out_proj)
    return call_without_grad(module, _constant_values_input(case["config"]))


def _dropout_calls(cls, case: dict, what: str, identity_out_proj: bool = False) -> dict:
    """Two eval() and two train() calls with all-ones values, on a batch of 8."""
    module = _ones_values_module(cls, case, what, identity_out_proj)
    inputs = _constant_values_input(case["config"], batch=8)
    return {"eval": eval_twice(module, inputs), "train": train_twice(module, inputs)}


def _expect_dropout_calls(outputs: dict, case: dict, what: str, head_dim: int) -> None:
    """Eval calls agree and their rows sum to 1; train calls differ, with dropout on each head's weights."""
    expect_eval_deterministic(outputs["eval"], what)
    shape = (8, 7, case["config"]["d_out"])
    expect_tensor(outputs["eval"][0], f"{what} output", shape=shape)
    _expect_rows_sum_to_one(outputs["eval"][0], f"{what} in eval()")
    expect_train_stochastic(outputs["train"], what)
    row_sums = outputs["train"][0]
    for h in range(case["config"]["d_out"] // head_dim):
        label = what if head_dim == case["config"]["d_out"] else f"{what}, head {h}"
        _expect_dropout_on_weights(row_sums[..., h * head_dim : (h + 1) * head_dim], 0.5, label)


# ---------------------------------------------------------------- ch03.causal_attention

CAUSAL = "CausalAttention(5, 4, context_length=7, dropout=0.5)"


def _causal_causality(sub, recorded):
    return _causal_probe_of(sub.CausalAttention, recorded["causal"], CAUSAL)


@causal_attention
@split(produce=_causal_causality)
def test_causal_attention_is_causal(outputs, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    _expect_causal_case(outputs, recorded["causal"], CAUSAL)


def _causal_row_sums(sub, recorded):
    return _row_sums(sub.CausalAttention, recorded["causal"], CAUSAL)


@causal_attention
@split(produce=_causal_row_sums)
def test_causal_attention_weights_sum_to_one(outputs, recorded):
    """every position's attention weights sum to 1 (values of all ones come out as ones)"""
    expect_tensor(outputs, f"{CAUSAL} output", shape=(2, 7, recorded["causal"]["config"]["d_out"]))
    _expect_rows_sum_to_one(outputs, CAUSAL)


def _causal_dropout(sub, recorded):
    return _dropout_calls(sub.CausalAttention, recorded["causal"], CAUSAL)


@causal_attention
@split(produce=_causal_dropout)
def test_causal_attention_dropout_only_in_training(outputs, recorded):
    """dropout acts on the attention weights in train(); eval() is deterministic"""
    case = recorded["causal"]
    _expect_dropout_calls(outputs, case, CAUSAL, head_dim=case["config"]["d_out"])


def _causal_outputs(sub, recorded):
    return recorded_outputs(_build(sub.CausalAttention, recorded["causal"], CAUSAL), recorded["causal"])


@causal_attention
@split(produce=_causal_outputs)
def test_causal_attention_matches_recorded(outputs, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than context_length"""
    expect_recorded_outputs(outputs, recorded["causal"], CAUSAL, ATOL)


def _causal_gradients(sub, recorded):
    return _gradients_of(sub.CausalAttention, recorded["causal"], CAUSAL)


@causal_attention
@split(produce=_causal_gradients)
def test_causal_attention_gradients_reach_every_weight(outputs, recorded):
    """gradients reach every projection"""
    expect_gradients_reach(outputs, recorded["causal"]["state"], CAUSAL)


# ---------------------------------------------------------------- ch03.multihead_wrapper

WRAPPER = "MultiHeadAttentionWrapper(5, 3, context_length=7, dropout=0.5, num_heads=3)"
WRAPPER_WITH_BIAS = WRAPPER.replace(")", ", qkv_bias=True)")


def _wrapper_layout(sub, recorded):
    config = recorded["wrapper"]["config"]
    module = sub.MultiHeadAttentionWrapper(**config)
    heads = getattr(module, "heads", None)
    return {
        "heads_is_module_list": isinstance(heads, torch.nn.ModuleList),
        "num_heads": len(heads) if isinstance(heads, torch.nn.ModuleList) else 0,
        "shapes": parameter_shapes(module, WRAPPER),
        "distinct_parameters": len({id(p) for p in module.parameters()}),
        "shapes_with_bias": parameter_shapes(sub.MultiHeadAttentionWrapper(**config, qkv_bias=True), WRAPPER_WITH_BIAS),
    }


@multihead_wrapper
@split(produce=_wrapper_layout)
def test_wrapper_holds_independent_heads(outputs, recorded):
    """heads is a ModuleList of num_heads heads, each with its own weights"""
    state = recorded["wrapper"]["state"]
    expect(outputs["heads_is_module_list"] is True, f"{WRAPPER}.heads should be an nn.ModuleList")
    expect(outputs["num_heads"] == 3, f"{WRAPPER}.heads holds {outputs['num_heads']} heads; expected 3")
    expect_parameter_shapes(outputs["shapes"], state, WRAPPER)
    shared = not outputs["distinct_parameters"] == len(state)
    expect(not shared, f"the heads of {WRAPPER} share weights; create a new CausalAttention for each head")
    expect_parameter_shapes(outputs["shapes_with_bias"], recorded["wrapper_with_qkv_bias"], WRAPPER_WITH_BIAS)


def _wrapper_outputs(sub, recorded):
    return recorded_outputs(_build(sub.MultiHeadAttentionWrapper, recorded["wrapper"], WRAPPER), recorded["wrapper"])


@multihead_wrapper
@split(produce=_wrapper_outputs)
def test_wrapper_matches_recorded(outputs, recorded):
    """same weights, same outputs of width d_out * num_heads"""
    expect_recorded_outputs(outputs, recorded["wrapper"], WRAPPER, ATOL)


def _wrapper_and_head_outputs(sub, recorded):
    case = recorded["wrapper"]
    module = _build(sub.MultiHeadAttentionWrapper, case, WRAPPER)
    inputs = case["inputs"][0]
    return {
        "out": call_without_grad(module, inputs),
        "heads": [call_without_grad(head, inputs) for head in module.heads],
    }


@multihead_wrapper
@split(produce=_wrapper_and_head_outputs)
def test_wrapper_concatenates_heads_in_order(outputs, recorded):
    """output columns h*d_out .. (h+1)*d_out - 1 are head h's output"""
    inputs = recorded["wrapper"]["inputs"][0]
    out = outputs["out"]
    expect_tensor(out, f"{WRAPPER} output", shape=(*inputs.shape[:2], 9))
    expect_list(outputs["heads"], 3, f"the {WRAPPER} head outputs")
    for h, head_out in enumerate(outputs["heads"]):
        expect_close(
            out[..., 3 * h : 3 * (h + 1)], head_out, f"output columns {3 * h}..{3 * h + 2} (head {h})", atol=ATOL
        )


def _wrapper_causality(sub, recorded):
    return _causal_probe_of(sub.MultiHeadAttentionWrapper, recorded["wrapper"], WRAPPER)


@multihead_wrapper
@split(produce=_wrapper_causality)
def test_wrapper_is_causal(outputs, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    _expect_causal_case(outputs, recorded["wrapper"], WRAPPER)


# ---------------------------------------------------------------- ch03.multihead_attention


def _multihead_name(config: dict) -> str:
    return (
        f"MultiHeadAttention({config['d_in']}, {config['d_out']}, context_length={config['context_length']}, "
        f"dropout={config['dropout']}, num_heads={config['num_heads']}, qkv_bias={config['qkv_bias']})"
    )


def _multihead_shapes(sub, recorded):
    return [
        parameter_shapes(sub.MultiHeadAttention(**case["config"]), _multihead_name(case["config"]))
        for case in recorded["multihead"]
    ]


@multihead_attention
@split(produce=_multihead_shapes)
def test_multihead_attention_parameters(outputs, recorded):
    """W_query, W_key, W_value (biases only with qkv_bias) and out_proj"""
    expect_list(outputs, len(recorded["multihead"]), "the MultiHeadAttention parameter shapes")
    for shapes, case in zip(outputs, recorded["multihead"], strict=True):
        expect_parameter_shapes(shapes, case["state"], _multihead_name(case["config"]))


def _multihead_causality(sub, recorded):
    case = recorded["multihead"][0]
    return _causal_probe_of(sub.MultiHeadAttention, case, _multihead_name(case["config"]))


@multihead_attention
@split(produce=_multihead_causality)
def test_multihead_attention_is_causal(outputs, recorded):
    """outputs at positions <= t ignore the tokens after t"""
    case = recorded["multihead"][0]
    _expect_causal_case(outputs, case, _multihead_name(case["config"]))


def _multihead_row_sums(sub, recorded):
    case = recorded["multihead"][0]
    return _row_sums(sub.MultiHeadAttention, case, _multihead_name(case["config"]), identity_out_proj=True)


@multihead_attention
@split(produce=_multihead_row_sums)
def test_multihead_attention_weights_sum_to_one(outputs, recorded):
    """every head's attention weights sum to 1 at every position"""
    case = recorded["multihead"][0]
    what = _multihead_name(case["config"])
    expect_tensor(outputs, f"{what} output", shape=(2, 7, case["config"]["d_out"]))
    _expect_rows_sum_to_one(outputs, what)


def _multihead_dropout(sub, recorded):
    case = recorded["multihead"][1]
    return _dropout_calls(sub.MultiHeadAttention, case, _multihead_name(case["config"]), identity_out_proj=True)


@multihead_attention
@split(produce=_multihead_dropout)
def test_multihead_attention_dropout_only_in_training(outputs, recorded):
    """dropout acts on the attention weights in train(); eval() is deterministic"""
    case = recorded["multihead"][1]
    head_dim = case["config"]["d_out"] // case["config"]["num_heads"]
    _expect_dropout_calls(outputs, case, _multihead_name(case["config"]), head_dim)


def _multihead_outputs(sub, recorded):
    return [
        recorded_outputs(_build(sub.MultiHeadAttention, case, _multihead_name(case["config"])), case)
        for case in recorded["multihead"]
    ]


@multihead_attention
@split(produce=_multihead_outputs)
def test_multihead_attention_matches_recorded(outputs, recorded):
    """same weights, same outputs in eval(), also for inputs shorter than context_length"""
    expect_list(outputs, len(recorded["multihead"]), "the MultiHeadAttention results")
    for got, case in zip(outputs, recorded["multihead"], strict=True):
        expect_recorded_outputs(got, case, _multihead_name(case["config"]), ATOL)


def _multihead_gradients(sub, recorded):
    case = recorded["multihead"][0]
    return _gradients_of(sub.MultiHeadAttention, case, _multihead_name(case["config"]))


@multihead_attention
@split(produce=_multihead_gradients)
def test_multihead_attention_gradients_reach_every_weight(outputs, recorded):
    """gradients reach every projection and out_proj"""
    case = recorded["multihead"][0]
    expect_gradients_reach(outputs, case["state"], _multihead_name(case["config"]))


def _indivisible_heads_error(sub):
    """What MultiHeadAttention(d_out=10, num_heads=3) raised ({"raised": type name, "message": text}), else None."""
    try:
        sub.MultiHeadAttention(d_in=4, d_out=10, context_length=5, dropout=0.0, num_heads=3)
    except Exception as exc:  # noqa: BLE001 - any exception type will do, if it explains itself
        return {"raised": type(exc).__name__, "message": str(exc)}
    return None


@multihead_attention
@split(produce=_indivisible_heads_error)
def test_multihead_attention_rejects_indivisible_heads(outputs):
    """d_out not divisible by num_heads raises an error that says so"""
    if outputs is None:
        fail(
            "MultiHeadAttention(d_in=4, d_out=10, ..., num_heads=3) was created without complaint; "
            "raise an error saying that d_out must be divisible by num_heads"
        )
    expect(
        bool(str(outputs["message"]).strip()),
        f"MultiHeadAttention(d_out=10, num_heads=3) raised {outputs['raised']} "
        "without a message; say that d_out must be divisible by num_heads",
    )
