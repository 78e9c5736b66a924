"""every inverse frequency computed pair by pair with Python's math in double precision (the base change
of NTK and YaRN's ramp as plain floats), then one float32 tensor built from the list"""


def _pairs(head_dim, theta_base):
    return [theta_base ** (-(2 * i) / head_dim) for i in range(head_dim // 2)]


def linear_scaled_inv_freq(head_dim: int, theta_base: float, factor: float) -> torch.Tensor:
    return torch.tensor([f / factor for f in _pairs(head_dim, theta_base)], dtype=torch.float32)


def ntk_scaled_inv_freq(head_dim: int, theta_base: float, factor: float) -> torch.Tensor:
    new_base = theta_base * factor ** (head_dim / (head_dim - 2))
    return torch.tensor(_pairs(head_dim, new_base), dtype=torch.float32)


def yarn_inv_freq(
    head_dim: int,
    theta_base: float,
    factor: float,
    original_context_length: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
) -> tuple[torch.Tensor, float]:
    def pair_for(rotations):
        return head_dim * math.log(original_context_length / (2 * math.pi * rotations)) / (2 * math.log(theta_base))

    low = max(math.floor(pair_for(beta_fast)), 0)
    high = min(math.ceil(pair_for(beta_slow)), head_dim - 1)
    if low == high:
        high += 0.001
    out = []
    for i, f in enumerate(_pairs(head_dim, theta_base)):
        ramp = min(max((i - low) / (high - low), 0.0), 1.0)
        out.append(f / factor * ramp + f * (1.0 - ramp))
    attention = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0
    return torch.tensor(out, dtype=torch.float32), float(attention)
