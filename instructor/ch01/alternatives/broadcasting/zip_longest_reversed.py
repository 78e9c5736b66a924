"""itertools.zip_longest over the two reversed shapes with fillvalue=1; the size is the one that is not 1."""

import itertools


def broadcast_shape(shape_a, shape_b) -> tuple[int, ...]:
    """The shape that broadcasting shape_a against shape_b gives, as a tuple of ints."""
    out = []
    for a, b in itertools.zip_longest(reversed(tuple(shape_a)), reversed(tuple(shape_b)), fillvalue=1):
        a, b = int(a), int(b)
        if a != b and a != 1 and b != 1:
            raise ValueError(f"cannot broadcast {tuple(shape_a)} with {tuple(shape_b)}")
        out.append(b if a == 1 else a)
    return tuple(out[::-1])
