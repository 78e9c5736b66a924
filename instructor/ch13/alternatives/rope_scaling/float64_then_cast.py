"""everything in float64 from the formulas (no rope_inv_freq), cast to float32 at the end; YaRN's
bounds from the rotation counts written as log base theta"""

import math

import torch


def _inv_freq64(head_dim, theta_base):
    return torch.tensor([theta_base ** (-2 * i / head_dim) for i in range(head_dim // 2)], dtype=torch.float64)


def linear_scaled_inv_freq(head_dim, theta_base, factor):
    return (_inv_freq64(head_dim, theta_base) / factor).float()


def ntk_scaled_inv_freq(head_dim, theta_base, factor):
    base = theta_base * factor ** (head_dim / (head_dim - 2))
    return _inv_freq64(head_dim, base).float()


def yarn_inv_freq(head_dim, theta_base, factor, original_context_length, beta_fast=32.0, beta_slow=1.0):
    def dim_of(turns):
        return (head_dim / 2) * math.log(original_context_length / (2 * math.pi * turns), theta_base)

    low = max(math.floor(dim_of(beta_fast)), 0)
    high = min(math.ceil(dim_of(beta_slow)), head_dim - 1)
    if high == low:
        high = high + 0.001
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    extrapolate = 1.0 - torch.clamp((i - low) / (high - low), min=0.0, max=1.0)
    base = _inv_freq64(head_dim, theta_base)
    inv_freq = base / factor * (1 - extrapolate) + base * extrapolate
    mscale = 1.0 if factor <= 1 else 1.0 + 0.1 * math.log(factor)
    return inv_freq.float(), float(mscale)
