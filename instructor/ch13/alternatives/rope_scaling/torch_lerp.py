"""torch.lerp between the original and the interpolated frequencies with the ramp as the weight;
NTK as the original frequencies times factor ** (-2i / (d - 2)), which is the same base change"""

import math

import torch


def linear_scaled_inv_freq(head_dim, theta_base, factor):
    return rope_inv_freq(head_dim, theta_base) * (1.0 / factor)


def ntk_scaled_inv_freq(head_dim, theta_base, factor):
    base = theta_base * factor ** (head_dim / (head_dim - 2))
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    return 1.0 / torch.pow(torch.tensor(base, dtype=torch.float32), exponents)


def yarn_inv_freq(head_dim, theta_base, factor, original_context_length, beta_fast=32.0, beta_slow=1.0):
    def correction_dim(rotations):
        return head_dim * math.log(original_context_length / (rotations * 2 * math.pi)) / (2 * math.log(theta_base))

    low = max(math.floor(correction_dim(beta_fast)), 0)
    high = min(math.ceil(correction_dim(beta_slow)), head_dim - 1)
    span = (high - low) if high != low else 0.001
    ramp = torch.clamp((torch.arange(head_dim // 2, dtype=torch.float32) - low) / span, 0, 1)
    original = rope_inv_freq(head_dim, theta_base)
    attention_factor = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return torch.lerp(original, original / factor, ramp), attention_factor
