"""both shapes padded on the left to the same length first, then compared position by position"""


def broadcast_shape(shape_a, shape_b):
    ndim = max(len(shape_a), len(shape_b))
    a = [1] * (ndim - len(shape_a)) + [int(s) for s in shape_a]
    b = [1] * (ndim - len(shape_b)) + [int(s) for s in shape_b]
    out = []
    for size_a, size_b in zip(a, b):
        if size_a != size_b and 1 not in (size_a, size_b):
            raise ValueError("shapes are not broadcastable")
        out.append(size_b if size_a == 1 else size_a)
    return tuple(out)
