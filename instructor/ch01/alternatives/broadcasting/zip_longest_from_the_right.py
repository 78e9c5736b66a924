"""the reversed shapes zipped with zip_longest (fillvalue 1), sizes compared through a set"""

from itertools import zip_longest


def broadcast_shape(shape_a, shape_b):
    result = []
    for a, b in zip_longest(reversed(list(shape_a)), reversed(list(shape_b)), fillvalue=1):
        sizes = {int(a), int(b)} - {1}
        if len(sizes) > 1:
            raise ValueError(f"cannot broadcast {tuple(shape_a)} with {tuple(shape_b)}")
        result.insert(0, sizes.pop() if sizes else 1)
    return tuple(result)
