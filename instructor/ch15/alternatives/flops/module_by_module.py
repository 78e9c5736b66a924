"""counts the parameters module by module with small helpers for a Linear and a LayerNorm, and writes the attention FLOPs as 6 * 2 * 2 * L * H * d_head * T / 2"""


def _linear(n_in: int, n_out: int, bias: bool) -> int:
    return n_in * n_out + (n_out if bias else 0)


def _layer_norm(dim: int) -> int:
    return 2 * dim  # scale and shift


def num_params_for_flops(cfg: dict) -> int:
    d, v = cfg["emb_dim"], cfg["vocab_size"]
    attention = 3 * _linear(d, d, cfg["qkv_bias"]) + _linear(d, d, True)
    feed_forward = _linear(d, 4 * d, True) + _linear(4 * d, d, True)
    block = attention + feed_forward + 2 * _layer_norm(d)
    token_embedding = v * d  # also the tied output head, counted once
    return token_embedding + cfg["n_layers"] * block + _layer_norm(d)


def flops_per_token(cfg: dict, num_params: int) -> float:
    L, H, T = cfg["n_layers"], cfg["n_heads"], cfg["context_length"]
    d_head = cfg["emb_dim"] // H
    weights = 6 * num_params
    attention = 6 * 2 * 2 * L * H * d_head * T // 2  # QK^T and AV, forward and backward
    return float(weights + attention)


def estimate_mfu(flops_per_token: float, tokens_per_second: float, peak_flops: float) -> float:
    achieved = flops_per_token * tokens_per_second  # FLOP/s spent on the model
    return achieved / peak_flops
