"""Chapter 3 fixtures: inputs, parameters and the reference's outputs for the public checks."""

from __future__ import annotations

import torch

from autograder.checks.modules import parameter_state

# Six tokens embedded in three dimensions, small enough to follow by hand.
SENTENCE_EMBEDDINGS = [
    [0.43, 0.15, 0.89],
    [0.55, 0.87, 0.66],
    [0.57, 0.85, 0.64],
    [0.22, 0.58, 0.33],
    [0.77, 0.25, 0.10],
    [0.05, 0.80, 0.55],
]

# d_in != d_out everywhere, so scaling by the wrong width shows; head_dim 2 with 3 heads
# and 4 with 2 heads, so mixing heads up shows.
CAUSAL = {"d_in": 5, "d_out": 4, "context_length": 7, "dropout": 0.5}
WRAPPER = {"d_in": 5, "d_out": 3, "context_length": 7, "dropout": 0.5, "num_heads": 3}
MULTIHEAD = [
    {"d_in": 5, "d_out": 6, "context_length": 7, "dropout": 0.5, "num_heads": 3, "qkv_bias": True},
    {"d_in": 6, "d_out": 8, "context_length": 7, "dropout": 0.5, "num_heads": 2, "qkv_bias": False},
]


def _eval_outputs(module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    module.eval()
    with torch.no_grad():
        return [module(x) for x in inputs]


def _module_case(make, config: dict, inputs: list[torch.Tensor]) -> dict:
    module = make(**config)
    return {
        "config": config,
        "state": parameter_state(module),
        "inputs": inputs,
        "outputs": _eval_outputs(module, inputs),
    }


def record(ref) -> dict:
    torch.manual_seed(123)
    sentence = torch.tensor(SENTENCE_EMBEDDINGS)
    other = torch.randn(5, 4)
    batch, short = torch.randn(2, 7, 5), torch.randn(3, 4, 5)
    return {
        "simple_inputs": [sentence, other],
        "simple_weights": [ref.attention_weights(x) for x in (sentence, other)],
        "simple_context": [ref.context_vectors(x) for x in (sentence, other)],
        "v1": _module_case(ref.SelfAttention_v1, {"d_in": 5, "d_out": 3}, [torch.randn(6, 5)]),
        "v2": [
            _module_case(ref.SelfAttention_v2, {"d_in": 5, "d_out": 3, "qkv_bias": bias}, [torch.randn(6, 5)])
            for bias in (False, True)
        ],
        "causal": _module_case(ref.CausalAttention, CAUSAL, [batch, short]),
        "wrapper": _module_case(ref.MultiHeadAttentionWrapper, WRAPPER, [batch, short]),
        "wrapper_with_qkv_bias": parameter_state(ref.MultiHeadAttentionWrapper(**WRAPPER, qkv_bias=True)),
        "multihead": [
            _module_case(
                ref.MultiHeadAttention, config, [torch.randn(2, 7, config["d_in"]), torch.randn(3, 4, config["d_in"])]
            )
            for config in MULTIHEAD
        ],
    }
