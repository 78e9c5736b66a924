"""Llama checkpoints in Hugging Face's and Meta's layouts, as the course's config and Hugging Face-named weights.

Every reader returns what chapter 8 needs: a `Llama3Model` configuration (vocab_size,
context_length, emb_dim, n_heads, n_layers, hidden_dim, n_kv_groups, rope_base, rope_freq,
dtype) and the parameters under Hugging Face's names, for `load_weights_into_llama`.
Queries and keys come out in the rotate-half RoPE layout of Hugging Face and the course;
Meta's checkpoints and llama.cpp's GGUF files store them interleaved (dimension pairs
2i, 2i + 1 rotate together), and `interleaved_to_rotate_half` moves them over.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

RMS_NORM_EPS = 1e-5  # the course's RMSNorm has this epsilon built in
# Meta's params.json says use_scaled_rope but not by how much: Llama 3.2 (1B: dim 2048, 3B: dim 3072)
# scales by 32, Llama 3.1 by 8.
_LLAMA32_DIMS = (2048, 3072)
_META_TO_HF = {
    "attention.wq.weight": "self_attn.q_proj.weight",
    "attention.wk.weight": "self_attn.k_proj.weight",
    "attention.wv.weight": "self_attn.v_proj.weight",
    "attention.wo.weight": "self_attn.o_proj.weight",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
_META_TOP_LEVEL = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


class CheckpointError(ValueError):
    """Files that do not hold a Llama the course's Llama3Model can run; the message says what differs."""


def interleaved_to_rotate_half(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """A query or key projection (n_heads * head_dim, emb_dim) moved from the interleaved RoPE layout
    (Meta, llama.cpp) to the rotate-half one: within each head, row 2i goes to i and row 2i + 1 to
    i + head_dim // 2. The inverse of the `permute` in transformers' convert_llama_weights_to_hf.py."""
    rows, columns = weight.shape
    return weight.reshape(n_heads, rows // n_heads // 2, 2, columns).transpose(1, 2).reshape(rows, columns)


def check_rms_norm_eps(eps: float, source: Path | str) -> None:
    if abs(eps - RMS_NORM_EPS) > 1e-3 * RMS_NORM_EPS:
        raise CheckpointError(f"{source}: RMSNorm epsilon {eps}; the course's Llama3Model uses {RMS_NORM_EPS}")


def llama3_rope_freq(rope: dict) -> dict:
    """The `rope_freq` of a Llama 3.1-style RoPE scaling (Hugging Face's rope_type "llama3")."""
    return {
        "factor": rope["factor"],
        "low_freq_factor": rope["low_freq_factor"],
        "high_freq_factor": rope["high_freq_factor"],
        "original_context_length": rope["original_max_position_embeddings"],
    }


def hf_config_to_cfg(hf: dict, dtype: torch.dtype, source: Path | str = "config.json") -> dict:
    """The Llama3Model configuration of a Hugging Face LlamaConfig dictionary (config.json).

    Reads RoPE from `rope_parameters` (transformers 5) or from rope_theta and rope_scaling
    (older files). CheckpointError for what Llama3Model cannot do: biases, another
    activation or head size, another RMSNorm epsilon, another RoPE scaling.
    """
    if hf.get("model_type") != "llama":
        raise CheckpointError(f"{source}: model_type {hf.get('model_type')!r}, not 'llama'")
    emb_dim, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("attention_bias") or hf.get("mlp_bias") or hf.get("hidden_act", "silu") != "silu":
        raise CheckpointError(f"{source}: Llama3Model has no biases and a SiLU feed-forward")
    if hf.get("head_dim") not in (None, emb_dim // n_heads):
        raise CheckpointError(
            f"{source}: head_dim {hf['head_dim']}; Llama3Model's is hidden_size // num_attention_heads"
        )
    check_rms_norm_eps(hf.get("rms_norm_eps", RMS_NORM_EPS), source)
    rope = hf.get("rope_parameters") or {**(hf.get("rope_scaling") or {}), "rope_theta": hf.get("rope_theta", 10000.0)}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "llama3"):
        raise CheckpointError(f"{source}: RoPE type {rope_type!r}; Llama3Model has the plain one and Llama 3.1's")
    return {
        "vocab_size": hf["vocab_size"],
        "context_length": hf["max_position_embeddings"],
        "emb_dim": emb_dim,
        "n_heads": n_heads,
        "n_layers": hf["num_hidden_layers"],
        "hidden_dim": hf["intermediate_size"],
        "n_kv_groups": hf.get("num_key_value_heads") or n_heads,
        "rope_base": rope["rope_theta"],
        "rope_freq": llama3_rope_freq(rope) if rope_type == "llama3" else None,
        "dtype": dtype,
    }


def hf_weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a Hugging Face folder: model.safetensors, or the shards its index names."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / shard for shard in shards]
    return [folder / "model.safetensors"]


def read_safetensors(files: list[Path], progress: bool = True) -> dict[str, torch.Tensor]:
    """Every tensor of the safetensors files `files`, by name (Hugging Face's), with a progress bar."""
    from safetensors import safe_open
    from tqdm import tqdm

    params = {}
    for path in files:
        if not path.is_file():
            raise CheckpointError(f"{path} is missing")
        with safe_open(str(path), framework="pt") as stored:
            for name in tqdm(list(stored.keys()), desc=f"loading {path.name}", unit="tensor", disable=not progress):
                params[name] = stored.get_tensor(name)
    return params


def tie_or_keep_head(params: dict[str, torch.Tensor], tied: bool, source: Path | str) -> dict[str, torch.Tensor]:
    """`params` without lm_head.weight when the head is tied to the embedding (load_weights_into_llama ties it)."""
    if tied:
        return {name: tensor for name, tensor in params.items() if name != "lm_head.weight"}
    if "lm_head.weight" not in params:
        raise CheckpointError(f"{source}: the output head is not tied to the embedding, and lm_head.weight is missing")
    return params


def read_hf_checkpoint(
    config_file: Path, weight_files: list[Path], dtype: torch.dtype, progress: bool = True
) -> tuple[dict, dict[str, torch.Tensor]]:
    """The configuration and parameters of a Hugging Face Llama: config.json and its safetensors files."""
    hf = json.loads(config_file.read_text(encoding="utf-8"))
    cfg = hf_config_to_cfg(hf, dtype, config_file)
    params = {
        name: tensor
        for name, tensor in read_safetensors(weight_files, progress).items()
        if not name.endswith("rotary_emb.inv_freq")
    }  # a buffer older checkpoints store
    return cfg, tie_or_keep_head(params, hf.get("tie_word_embeddings", False), config_file)


def meta_hidden_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """The feed-forward width of Meta's llama/model.py: 2/3 of 4 * dim, scaled, rounded up to multiple_of."""
    hidden = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def meta_params_to_cfg(params: dict, dtype: torch.dtype, source: Path | str = "params.json") -> dict:
    """The Llama3Model configuration of Meta's params.json (Llama 3, 3.1, 3.2).

    The context is 131,072 tokens with use_scaled_rope (Llama 3.1 and later), else 8,192;
    max_seq_len, where given, wins. The RoPE scaling is Llama 3.1's (low 1, high 4,
    original context 8,192), with factor 32 for Llama 3.2's sizes (dim 2048 and 3072) and
    8 otherwise, the choice of transformers' conversion script.
    """
    check_rms_norm_eps(params.get("norm_eps", RMS_NORM_EPS), source)
    dim, scaled = params["dim"], params.get("use_scaled_rope", False)
    factor = 32.0 if dim in _LLAMA32_DIMS else 8.0
    rope_freq = (
        {"factor": factor, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_context_length": 8192}
        if scaled
        else None
    )
    return {
        "vocab_size": params["vocab_size"],
        "context_length": params.get("max_seq_len", 131_072 if scaled else 8192),
        "emb_dim": dim,
        "n_heads": params["n_heads"],
        "n_layers": params["n_layers"],
        "hidden_dim": meta_hidden_dim(dim, params.get("multiple_of", 256), params.get("ffn_dim_multiplier")),
        "n_kv_groups": params.get("n_kv_heads") or params["n_heads"],
        "rope_base": params.get("rope_theta", 10000.0),
        "rope_freq": rope_freq,
        "dtype": dtype,
    }


def meta_to_hf_names(state: dict[str, torch.Tensor], cfg: dict) -> dict[str, torch.Tensor]:
    """Meta's tensors under Hugging Face's names, queries and keys moved to the rotate-half layout."""
    params = {}
    for name, tensor in state.items():
        if name in _META_TOP_LEVEL:
            params[_META_TOP_LEVEL[name]] = tensor
            continue
        layer, _, part = name.removeprefix("layers.").partition(".")
        if not name.startswith("layers.") or part not in _META_TO_HF:
            raise CheckpointError(f"{name} is not a tensor of Meta's Llama checkpoints")
        if part == "attention.wq.weight":
            tensor = interleaved_to_rotate_half(tensor, cfg["n_heads"])
        elif part == "attention.wk.weight":
            tensor = interleaved_to_rotate_half(tensor, cfg["n_kv_groups"])
        params[f"model.layers.{layer}.{_META_TO_HF[part]}"] = tensor
    return params


def read_meta_checkpoint(folder: Path, dtype: torch.dtype) -> tuple[dict, dict[str, torch.Tensor]]:
    """The configuration and parameters of Meta's layout: params.json and one consolidated.00.pth."""
    import torch

    shards = sorted(folder.glob("consolidated.*.pth"))
    if len(shards) != 1:
        raise CheckpointError(
            f"{folder}: {len(shards)} consolidated.*.pth files; the course reads checkpoints "
            "of one file (Llama 3.2 1B and 3B, Llama 3.1 8B)"
        )
    cfg = meta_params_to_cfg(
        json.loads((folder / "params.json").read_text(encoding="utf-8")), dtype, folder / "params.json"
    )
    state = torch.load(shards[0], map_location="cpu", weights_only=True, mmap=True)
    return cfg, meta_to_hf_names(state, cfg)  # without output.weight, load_weights_into_llama ties the head
