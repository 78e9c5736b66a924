"""Loops: sums axis 0 while grad has more dims than shape, then sums each size-1 axis with keepdims one at a time"""


def unbroadcast(grad, shape):
    grad = np.asarray(grad, dtype=np.float64)
    while grad.ndim > len(shape):
        grad = np.asarray(grad.sum(axis=0))
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad
