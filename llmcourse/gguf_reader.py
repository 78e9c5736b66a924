"""Llama models in llama.cpp's GGUF files: configuration, dequantized weights, tokenizer and chat template.

Read with the `gguf` package (GGUFReader; gguf.quants.dequantize turns Q4_1, Q8_0, F16 ...
into float32). llama.cpp's convert_hf_to_gguf.py renames Hugging Face's tensors
(`blk.N.attn_q.weight` for `model.layers.N.self_attn.q_proj.weight`, ...) and permutes
queries and keys into the interleaved RoPE layout; `read_gguf` undoes both. The tokenizer
is the byte-level BPE of the metadata (`tokenizer.ggml.model` "gpt2") as a tiktoken encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bpe_tokenizer import ByteLevelBPETokenizer, pattern_for_pre
from .llama_checkpoints import CheckpointError, check_rms_norm_eps, interleaved_to_rotate_half

if TYPE_CHECKING:
    import numpy as np
    import torch

_TOP_LEVEL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_BLOCK_PARTS = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_ROPE_FACTORS = "rope_freqs.weight"  # llama.cpp's form of Llama 3.1's RoPE scaling: a divisor per frequency
_TOKEN_TYPE_NORMAL = 1
_REQUIRED = object()


@dataclass
class GGUFLlama:
    """What a GGUF file holds for the course: see `read_gguf`."""

    cfg: dict
    params: dict[str, torch.Tensor]
    tokenizer: ByteLevelBPETokenizer
    bos_id: int | None  # put before a plain prompt; None when the file says not to (add_bos_token false)
    eos_id: int | None
    chat_template: str | None
    token_texts: list[str]  # the vocabulary as stored, by id


def _value(fields: dict, key: str, default: Any = _REQUIRED) -> Any:
    if key in fields:
        return fields[key].contents()
    if default is _REQUIRED:
        raise CheckpointError(f"the GGUF metadata has no {key}")
    return default


def _rope_freq(factors: np.ndarray, head_dim: int, rope_base: float) -> dict:
    """The Llama 3.1-style `rope_freq` whose per-frequency divisors are `factors` (head_dim // 2,)."""
    import torch

    from previous_chapters import compute_rope_params

    def inverse_frequencies(freq_config: dict | None) -> torch.Tensor:
        cos, sin = compute_rope_params(head_dim, rope_base, 2, freq_config)
        return torch.atan2(sin[1, : head_dim // 2], cos[1, : head_dim // 2])  # the angle at position 1

    plain = inverse_frequencies(None)
    for factor in (8.0, 16.0, 32.0):
        candidate = {"factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_context_length": 8192}
        if torch.allclose(plain / inverse_frequencies(candidate), torch.from_numpy(factors).float(), rtol=1e-3):
            return candidate
    raise CheckpointError(
        "rope_freqs.weight is not Llama 3.1's RoPE scaling (factor 8, 16 or 32, low 1, high 4, "
        "original context 8192), the only scaling Llama3Model has"
    )


def _config(fields: dict, vocab_size: int, dtype: torch.dtype, source: Path) -> dict:
    architecture = _value(fields, "general.architecture")
    if architecture != "llama":
        raise CheckpointError(f"{source}: a {architecture!r} model; the course reads 'llama' GGUF files")
    n_heads = _value(fields, "llama.attention.head_count")
    emb_dim = _value(fields, "llama.embedding_length")
    if _value(fields, "llama.rope.dimension_count", emb_dim // n_heads) != emb_dim // n_heads:
        raise CheckpointError(f"{source}: RoPE turns only part of each head; Llama3Model turns all of it")
    check_rms_norm_eps(_value(fields, "llama.attention.layer_norm_rms_epsilon"), source)
    return {
        "vocab_size": vocab_size,
        "context_length": _value(fields, "llama.context_length"),
        "emb_dim": emb_dim,
        "n_heads": n_heads,
        "n_layers": _value(fields, "llama.block_count"),
        "hidden_dim": _value(fields, "llama.feed_forward_length"),
        "n_kv_groups": _value(fields, "llama.attention.head_count_kv", n_heads),
        "rope_base": float(_value(fields, "llama.rope.freq_base", 10000.0)),
        "rope_freq": None,
        "dtype": dtype,
    }


def _hf_name(name: str) -> str:
    if name in _TOP_LEVEL:
        return _TOP_LEVEL[name]
    block, _, part = name.removeprefix("blk.").partition(".")
    if not name.startswith("blk.") or part not in _BLOCK_PARTS:
        raise CheckpointError(f"{name} is not a tensor of llama.cpp's Llama layout")
    return f"model.layers.{block}.{_BLOCK_PARTS[part]}"


def _weights(reader: Any, cfg: dict, progress: bool) -> dict[str, torch.Tensor]:
    """The dequantized tensors under Hugging Face's names, queries and keys in the rotate-half layout."""
    import numpy as np
    import torch
    from gguf.quants import dequantize
    from tqdm import tqdm

    params = {}
    for tensor in tqdm(reader.tensors, desc="dequantizing", unit="tensor", disable=not progress):
        values = np.array(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        if tensor.name == _ROPE_FACTORS:
            cfg["rope_freq"] = _rope_freq(values, cfg["emb_dim"] // cfg["n_heads"], cfg["rope_base"])
            continue
        name = _hf_name(tensor.name)
        weight = torch.from_numpy(values)
        if name.endswith("q_proj.weight"):
            weight = interleaved_to_rotate_half(weight, cfg["n_heads"])
        elif name.endswith("k_proj.weight"):
            weight = interleaved_to_rotate_half(weight, cfg["n_kv_groups"])
        params[name] = weight
    return params


def _tokenizer(fields: dict, source: Path) -> ByteLevelBPETokenizer:
    kind = _value(fields, "tokenizer.ggml.model")
    if kind != "gpt2":
        raise CheckpointError(
            f"{source}: tokenizer.ggml.model {kind!r}; the course reads byte-level BPE ('gpt2') "
            "vocabularies, such as Llama 3's and SmolLM's"
        )
    tokens = _value(fields, "tokenizer.ggml.tokens")
    types = _value(fields, "tokenizer.ggml.token_type", [_TOKEN_TYPE_NORMAL] * len(tokens))
    # Control and user-defined tokens (<|im_end|>, ...) are matched whole in the text, not cut by BPE.
    special = {token: i for i, (token, kind) in enumerate(zip(tokens, types)) if kind != _TOKEN_TYPE_NORMAL}
    return ByteLevelBPETokenizer(
        source.stem,
        tokens,
        special,
        _value(fields, "tokenizer.ggml.merges"),
        pattern_for_pre(_value(fields, "tokenizer.ggml.pre", None)),
    )


def read_gguf(path: str | Path, dtype: torch.dtype, progress: bool = True) -> GGUFLlama:
    """The Llama in a GGUF file: a Llama3Model configuration, float32 parameters under Hugging Face's names
    (queries and keys rotate-half), the tokenizer, bos/eos ids and the chat template of the metadata.

    CheckpointError when the file holds something Llama3Model cannot run (another architecture,
    another RMSNorm epsilon, partial RoPE, a SentencePiece vocabulary).
    """
    from gguf import GGUFReader

    path = Path(path)
    reader = GGUFReader(path)
    fields = reader.fields
    tokens = _value(fields, "tokenizer.ggml.tokens")
    cfg = _config(fields, len(tokens), dtype, path)
    params = _weights(reader, cfg, progress)  # without output.weight, load_weights_into_llama ties the head
    add_bos = _value(fields, "tokenizer.ggml.add_bos_token", False)
    return GGUFLlama(
        cfg=cfg,
        params=params,
        tokenizer=_tokenizer(fields, path),
        bos_id=_value(fields, "tokenizer.ggml.bos_token_id", None) if add_bos else None,
        eos_id=_value(fields, "tokenizer.ggml.eos_token_id", None),
        chat_template=_value(fields, "tokenizer.chat_template", None),
        token_texts=tokens,
    )
