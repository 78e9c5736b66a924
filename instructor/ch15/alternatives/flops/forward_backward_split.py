"""per-layer weight counts from the matrix shapes; FLOPs as a forward pass (2N + attention) tripled for the backward"""


def num_params_for_flops(cfg):
    d, v, layers = cfg["emb_dim"], cfg["vocab_size"], cfg["n_layers"]
    matrices = 4 * d * d + 2 * (d * 4 * d)  # q, k, v, out_proj; the two feed-forward layers
    biases = d + 4 * d + d + (3 * d if cfg["qkv_bias"] else 0)  # out_proj, ff.layers[0], ff.layers[2], q/k/v
    norms = 2 * 2 * d
    return v * d + layers * (matrices + biases + norms) + 2 * d


def flops_per_token(cfg, num_params):
    head_dim = cfg["emb_dim"] // cfg["n_heads"]
    forward_attention = 2 * 2 * cfg["n_layers"] * cfg["n_heads"] * head_dim * cfg["context_length"]
    forward = 2 * num_params + forward_attention
    return float(3 * forward)


def estimate_mfu(flops_per_token, tokens_per_second, peak_flops):
    return float(flops_per_token) * float(tokens_per_second) / float(peak_flops)
