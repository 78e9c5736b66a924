"""BLOOM's closed form: base 2 ** -(2 ** -(log2(p) - 3)) raised to 1..p, the extra slopes as odd
powers of the next power of two's base; the bias from broadcast position differences"""

import math

import torch


def alibi_slopes(num_heads):
    closest = 2 ** math.floor(math.log2(num_heads))
    base = torch.tensor(2 ** (-(2 ** -(math.log2(closest) - 3))), dtype=torch.float32)
    slopes = torch.pow(base, torch.arange(1, 1 + closest, dtype=torch.int32))
    if closest != num_heads:
        extra_base = torch.tensor(2 ** (-(2 ** -(math.log2(2 * closest) - 3))), dtype=torch.float32)
        extra = min(closest, num_heads - closest)
        slopes = torch.cat([slopes, torch.pow(extra_base, torch.arange(1, 1 + 2 * extra, 2, dtype=torch.int32))])
    return slopes


def alibi_bias(num_heads, num_tokens):
    i = torch.arange(num_tokens).view(-1, 1)
    j = torch.arange(num_tokens).view(1, -1)
    return alibi_slopes(num_heads).view(-1, 1, 1) * (j - i).float()
