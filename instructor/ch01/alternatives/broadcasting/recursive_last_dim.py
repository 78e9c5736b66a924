"""Recursive: broadcast everything but the last dimension, then append the last dimension's size."""


def broadcast_shape(shape_a, shape_b) -> tuple[int, ...]:
    shape_a, shape_b = tuple(int(s) for s in shape_a), tuple(int(s) for s in shape_b)
    if not shape_a:
        return shape_b
    if not shape_b:
        return shape_a
    a, b = shape_a[-1], shape_b[-1]
    if a != b and 1 not in (a, b):
        raise ValueError(f"{shape_a} and {shape_b} do not broadcast: {a} against {b}")
    last = b if a == 1 else a
    return broadcast_shape(shape_a[:-1], shape_b[:-1]) + (last,)
