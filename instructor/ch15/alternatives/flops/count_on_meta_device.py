"""builds GPTModel(cfg) on the meta device (no memory) and counts its parameters, the position embedding left out"""


def num_params_for_flops(cfg):
    with torch.device("meta"):
        model = GPTModel(cfg)
    total = sum(p.numel() for p in model.parameters())  # parameters() yields the tied matrix once
    return total - model.pos_emb.weight.numel()


def flops_per_token(cfg, num_params):
    L, H, Q, T = cfg["n_layers"], cfg["n_heads"], cfg["emb_dim"] // cfg["n_heads"], cfg["context_length"]
    return 6.0 * num_params + 12.0 * L * H * Q * T


def estimate_mfu(flops_per_token, tokens_per_second, peak_flops):
    achieved = flops_per_token * tokens_per_second
    return achieved / peak_flops
