"""the ALiBi paper's recursive get_slopes (start = ratio = 2 ** (-2 ** -(log2(n) - 3))); the bias as
minus the slope times the backward distance, clamped to 0 above the diagonal"""

import math

import torch


def alibi_slopes(num_heads):
    def power_of_2(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    def get_slopes(n):
        if math.log2(n).is_integer():
            return power_of_2(n)
        closest = 2 ** math.floor(math.log2(n))
        return power_of_2(closest) + get_slopes(2 * closest)[0::2][: n - closest]

    return torch.tensor(get_slopes(num_heads), dtype=torch.float32)


def alibi_bias(num_heads, num_tokens):
    back = (torch.arange(num_tokens)[:, None] - torch.arange(num_tokens)[None, :]).clamp(min=0)
    return -alibi_slopes(num_heads)[:, None, None] * back
