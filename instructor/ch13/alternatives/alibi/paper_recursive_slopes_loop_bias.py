"""the ALiBi paper's recursive get_slopes in plain Python (the power of two's slopes, then every other slope
of twice as many heads), and the bias filled head by head from a (j - i) distance matrix"""


def alibi_slopes(num_heads: int) -> torch.Tensor:
    def power_of_two(n):
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(num_heads).is_integer():
        slopes = power_of_two(num_heads)
    else:
        closest = 2 ** math.floor(math.log2(num_heads))
        slopes = power_of_two(closest) + power_of_two(2 * closest)[0::2][: num_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(num_heads: int, num_tokens: int) -> torch.Tensor:
    slopes = alibi_slopes(num_heads)
    distance = torch.zeros(num_tokens, num_tokens)
    for i in range(num_tokens):
        for j in range(num_tokens):
            distance[i, j] = j - i
    bias = torch.empty(num_heads, num_tokens, num_tokens)
    for h in range(num_heads):
        bias[h] = slopes[h] * distance
    return bias
