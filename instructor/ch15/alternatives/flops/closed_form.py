"""closed-form polynomial 12*L*d^2 + (10 or 13)*L*d + V*d + 2d for the count, and nanoGPT's estimate_mfu structure (flops per iteration over time per iteration) for MFU"""


def num_params_for_flops(cfg: dict) -> int:
    L, d, V = cfg["n_layers"], cfg["emb_dim"], cfg["vocab_size"]
    per_layer_linear = 13 * d if cfg["qkv_bias"] else 10 * d  # biases and LayerNorm parameters per block
    return 12 * L * d * d + L * per_layer_linear + V * d + 2 * d


def flops_per_token(cfg: dict, num_params: int) -> float:
    L, H, Q, T = cfg["n_layers"], cfg["n_heads"], cfg["emb_dim"] // cfg["n_heads"], cfg["context_length"]
    return float(6 * (num_params + 2 * L * H * Q * T))


def estimate_mfu(flops_per_token: float, tokens_per_second: float, peak_flops: float) -> float:
    seconds_per_token = 1.0 / tokens_per_second
    flops_achieved = flops_per_token / seconds_per_token
    return flops_achieved / peak_flops
