"""Both shapes padded on the left with 1s to the same length, then compared position by position front to back."""


def broadcast_shape(shape_a, shape_b) -> tuple[int, ...]:
    a, b = [int(s) for s in shape_a], [int(s) for s in shape_b]
    n = max(len(a), len(b))
    a = [1] * (n - len(a)) + a
    b = [1] * (n - len(b)) + b
    result = ()
    for size_a, size_b in zip(a, b):
        if size_a == 1:
            result += (size_b,)
        elif size_b == 1 or size_b == size_a:
            result += (size_a,)
        else:
            raise ValueError(f"size {size_a} does not broadcast against size {size_b}")
    return result
