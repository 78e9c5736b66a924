"""linear as 1 / (factor * theta_base ** (2i / head_dim)) (as transformers writes interpolation); NTK as the
original frequencies times factor ** (-2i / (head_dim - 2)) (the base change distributed over the pairs);
YaRN's ramp from float pair indices and torch.lerp between the kept and the interpolated frequencies"""


def linear_scaled_inv_freq(head_dim: int, theta_base: float, factor: float) -> torch.Tensor:
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    return 1.0 / (factor * theta_base**exponents)


def ntk_scaled_inv_freq(head_dim: int, theta_base: float, factor: float) -> torch.Tensor:
    two_i = torch.arange(0, head_dim, 2, dtype=torch.float64)
    stretch = factor ** (-two_i / (head_dim - 2))
    return (rope_inv_freq(head_dim, theta_base).double() * stretch).float()


def yarn_inv_freq(
    head_dim: int,
    theta_base: float,
    factor: float,
    original_context_length: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
) -> tuple[torch.Tensor, float]:
    log_base = math.log(theta_base)
    d_fast = head_dim * math.log(original_context_length / (2 * math.pi * beta_fast)) / (2 * log_base)
    d_slow = head_dim * math.log(original_context_length / (2 * math.pi * beta_slow)) / (2 * log_base)
    low, high = max(math.floor(d_fast), 0), min(math.ceil(d_slow), head_dim - 1)
    if high == low:
        high = high + 0.001
    idx = torch.arange(head_dim // 2, dtype=torch.float32)
    ramp = ((idx - low) / (high - low)).clamp(0.0, 1.0)
    kept = rope_inv_freq(head_dim, theta_base)
    inv_freq = torch.lerp(kept, kept / factor, ramp)
    mscale = 1.0 if factor <= 1 else 1.0 + 0.1 * math.log(factor)
    return inv_freq, mscale
