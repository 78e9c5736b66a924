"""Pads `shape` with leading 1s to grad's rank, sums every axis where the padded shape is 1 and grad's is not
(keepdims), then reshapes the result to `shape`"""


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    grad = np.asarray(grad)
    padded = (1,) * (grad.ndim - len(shape)) + tuple(shape)
    axes = tuple(i for i, (p, g) in enumerate(zip(padded, grad.shape)) if p == 1 and g != 1)
    summed = np.sum(grad, axis=axes, keepdims=True) if axes else grad
    return np.reshape(summed, shape)
