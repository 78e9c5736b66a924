"""Sums with np.add.reduce over the axes found by comparing grad.shape with np.broadcast_shapes, aligned from the right"""


def unbroadcast(grad, shape):
    grad = np.asarray(grad)
    shape = tuple(shape)
    assert np.broadcast_shapes(shape, grad.shape) == grad.shape
    lead = grad.ndim - len(shape)
    if lead:
        grad = np.add.reduce(grad, axis=tuple(range(lead)))
    keep = [ax for ax in range(-1, -len(shape) - 1, -1) if shape[ax] == 1 and grad.shape[ax] > 1]
    if keep:
        grad = np.add.reduce(grad, axis=tuple(keep), keepdims=True)
    return np.asarray(grad).reshape(shape)
