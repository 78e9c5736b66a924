"""complex numbers in the rotate-half pairing; tables from torch.outer and torch.polar; Meta's loop for the scaling"""

import math


def _llama31_scaled(inv_freq, freq_config):
    """Meta's apply_scaling, one frequency at a time."""
    factor = freq_config["factor"]
    low, high = freq_config["low_freq_factor"], freq_config["high_freq_factor"]
    old_context = freq_config["original_context_length"]
    low_freq_wavelen, high_freq_wavelen = old_context / low, old_context / high
    scaled = []
    for freq in inv_freq.tolist():
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            scaled.append(freq)
        elif wavelen > low_freq_wavelen:
            scaled.append(freq / factor)
        else:
            smooth = (old_context / wavelen - low) / (high - low)
            scaled.append((1 - smooth) * freq / factor + smooth * freq)
    return torch.tensor(scaled, dtype=torch.float32)


def compute_rope_params(head_dim, theta_base=10_000, context_length=4096, freq_config=None):
    assert head_dim % 2 == 0, "head_dim must be even"
    inv_freq = 1.0 / (theta_base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    if freq_config is not None:
        inv_freq = _llama31_scaled(inv_freq, freq_config)
    angles = torch.outer(torch.arange(context_length, dtype=torch.float32), inv_freq)
    turns = torch.polar(torch.ones_like(angles), angles)
    cos, sin = turns.real, turns.imag
    return torch.cat([cos, cos], dim=-1), torch.cat([sin, sin], dim=-1)


def apply_rope(x, cos, sin):
    """Pair i is the complex number x[i] + 1j * x[i + head_dim // 2], turned by cos + 1j * sin."""
    num_tokens, half = x.shape[2], x.shape[3] // 2
    pairs = torch.complex(x[..., :half].float(), x[..., half:].float())
    turns = torch.complex(cos[:num_tokens, :half], sin[:num_tokens, :half])
    turned = pairs * turns
    return torch.cat([turned.real, turned.imag], dim=-1).to(x.dtype)
