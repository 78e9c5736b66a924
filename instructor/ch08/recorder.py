"""Chapter 8 fixtures: small Llama configurations, parameters, inputs and the reference's outputs.

The loader's fixture is an oracle of its own: a tiny Hugging Face `LlamaForCausalLM`,
its parameters under Hugging Face's names and the logits transformers computes.
"""

from __future__ import annotations

import torch

from autograder.checks.llama_setups import LLAMA31_SCALING, SMALL_LLAMA, write_ranks
from autograder.checks.modules import parameter_state, randomised

GQA_SHAPES = [  # (d_in, d_out, num_heads, num_kv_groups): multi-head, grouped, multi-query
    (10, 12, 3, 3),
    (10, 24, 6, 2),
    (8, 16, 4, 1),
]
TOKENIZER_TEXTS = [
    "Hello, world! It's 2024 and we're testing 12345 tokens.",
    "  spaces   and\nnewlines\n\n\ttabs\r\n",
    "Ünïcödé – “quotes” and emoji 🙂, ok?",
    "I'LL say it's the THE theme: there, then, them.",
]
DIALOG = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "  What is the capital of France?\n"},
]


def _outputs(module, *inputs) -> torch.Tensor:
    with torch.no_grad():
        return module(*inputs)


def _rope(ref) -> dict:
    x = torch.randn(2, 3, 7, 16)
    cos, sin = ref.compute_rope_params(16, theta_base=10_000, context_length=12)
    return {
        "tables": {
            theta: ref.compute_rope_params(16, theta_base=theta, context_length=12) for theta in (10_000, 500_000)
        },
        "scaled": ref.compute_rope_params(64, theta_base=500_000, context_length=40, freq_config=LLAMA31_SCALING),
        "unscaled": ref.compute_rope_params(64, theta_base=500_000, context_length=40),
        "x": x,
        "rotated": ref.apply_rope(x, cos, sin),
    }


def _gqa(ref) -> list[dict]:
    cases = []
    for i, (d_in, d_out, num_heads, num_kv_groups) in enumerate(GQA_SHAPES):
        module = randomised(ref.GroupedQueryAttention(d_in, d_out, num_heads, num_kv_groups), seed=i, std=0.3).eval()
        x = torch.randn(2, 6, d_in)
        cos, sin = ref.compute_rope_params(d_out // num_heads, context_length=10)
        mask = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
        cases.append(
            {
                "shape": (d_in, d_out, num_heads, num_kv_groups),
                "state": parameter_state(module),
                "x": x,
                "output": _outputs(module, x, mask, cos, sin),
            }
        )
    return cases


def _llama(ref) -> dict:
    model = randomised(ref.Llama3Model(SMALL_LLAMA), seed=3, std=0.3).eval()
    scaled_cfg = {**SMALL_LLAMA, "rope_freq": LLAMA31_SCALING}
    scaled = randomised(ref.Llama3Model(scaled_cfg), seed=4, std=0.3).eval()
    tokens = [torch.randint(0, SMALL_LLAMA["vocab_size"], (2, 9)), torch.randint(0, SMALL_LLAMA["vocab_size"], (1, 16))]
    prompts = torch.randint(0, SMALL_LLAMA["vocab_size"], (2, 5))
    return {
        "state": parameter_state(model),
        "tokens": tokens,
        "logits": [_outputs(model, t) for t in tokens],
        "scaled_state": parameter_state(scaled),
        "scaled_logits": _outputs(scaled, tokens[1]),
        "prompts": prompts,
        "generated": ref.generate_text_simple_cached(model, prompts, 8),
    }


def _hugging_face_llama() -> dict:
    """A tiny random LlamaForCausalLM: its parameters by Hugging Face's names and its logits."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(5)
    config = LlamaConfig(
        vocab_size=SMALL_LLAMA["vocab_size"],
        hidden_size=SMALL_LLAMA["emb_dim"],
        intermediate_size=SMALL_LLAMA["hidden_dim"],
        num_hidden_layers=SMALL_LLAMA["n_layers"],
        num_attention_heads=SMALL_LLAMA["n_heads"],
        num_key_value_heads=SMALL_LLAMA["n_kv_groups"],
        max_position_embeddings=SMALL_LLAMA["context_length"],
        rope_theta=SMALL_LLAMA["rope_base"],
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.normal_(1.0, 0.2)
    tokens = torch.randint(0, SMALL_LLAMA["vocab_size"], (2, 11))
    with torch.no_grad():
        logits = model(tokens).logits
    params = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    return {"params": params, "tokens": tokens, "logits": logits}


def _tokenizer(ref, tmp_dir) -> dict:
    path = write_ranks(tmp_dir / "tokenizer.model")
    tokenizer = ref.Tokenizer(path)
    chat = ref.ChatFormat(tokenizer)
    return {
        "texts": TOKENIZER_TEXTS,
        "ids": [tokenizer.encode(text) for text in TOKENIZER_TEXTS],
        "dialog": DIALOG,
        "dialog_ids": chat.encode_dialog_prompt(DIALOG),
    }


def record(ref) -> dict:
    import tempfile
    from pathlib import Path

    torch.manual_seed(123)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = _tokenizer(ref, Path(tmp))
    return {
        "rope": _rope(ref),
        "gqa": _gqa(ref),
        "llama": _llama(ref),
        "hugging_face": _hugging_face_llama(),
        "tokenizer": tokenizer,
    }
