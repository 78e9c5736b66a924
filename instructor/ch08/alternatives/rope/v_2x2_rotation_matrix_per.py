"""a 2x2 rotation matrix per pair through einsum; tables from einsum; the smooth band as a clamped blend"""


def compute_rope_params(
    head_dim: int, theta_base: float = 10_000, context_length: int = 4096, freq_config: dict | None = None
):
    if head_dim % 2 != 0:
        raise ValueError("head_dim must be even")
    exponents = torch.arange(head_dim // 2, dtype=torch.float32) * 2 / head_dim
    inv_freq = torch.pow(torch.tensor(float(theta_base)), -exponents)
    if freq_config:
        low, high = freq_config["low_freq_factor"], freq_config["high_freq_factor"]
        original = freq_config["original_context_length"]
        # 0 for long wavelengths (slowed by factor), 1 for short ones (kept), a straight blend in between.
        keep = ((original * inv_freq / (2 * torch.pi) - low) / (high - low)).clamp(0.0, 1.0)
        inv_freq = (1 - keep) * inv_freq / freq_config["factor"] + keep * inv_freq
    angles = torch.einsum("p,f->pf", torch.arange(context_length, dtype=torch.float32), inv_freq)
    return angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    num_tokens, half = x.shape[-2], x.shape[-1] // 2
    c, s = cos[:num_tokens, :half], sin[:num_tokens, :half]
    rotation = torch.stack([torch.stack([c, -s], dim=-1), torch.stack([s, c], dim=-1)], dim=-2)
    pairs = torch.stack([x[..., :half], x[..., half:]], dim=-1).float()
    turned = torch.einsum("nfij,bhnfj->bhnfi", rotation, pairs)
    return torch.cat([turned[..., 0], turned[..., 1]], dim=-1).to(x.dtype)
