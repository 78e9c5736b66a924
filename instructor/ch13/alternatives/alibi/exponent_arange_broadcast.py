"""slopes as 2 ** (exponent tensor): the exponents -8 (h + 1) / n0 for the power of two n0 below, then the
odd multiples -8 (2k + 1) / (2 n0) for the extra heads; the bias as -slope * (i - j) by broadcasting"""


def alibi_slopes(num_heads: int) -> torch.Tensor:
    n0 = 1 << (num_heads.bit_length() - 1)
    exps = -8.0 * torch.arange(1, n0 + 1, dtype=torch.float64) / n0
    extra = num_heads - n0
    if extra:
        odd = torch.arange(1, 2 * extra, 2, dtype=torch.float64)
        exps = torch.cat([exps, -8.0 * odd / (2 * n0)])
    return torch.pow(2.0, exps).to(torch.float32)


def alibi_bias(num_heads: int, num_tokens: int) -> torch.Tensor:
    i = torch.arange(num_tokens, dtype=torch.float32).view(1, -1, 1)
    j = torch.arange(num_tokens, dtype=torch.float32).view(1, 1, -1)
    return -alibi_slopes(num_heads).view(-1, 1, 1) * (i - j)
