"""div written as a * reciprocal(b), reciprocal an op of its own (VJP -grad / b**2); np.add/np.multiply; VJPs return lists"""


def add(a, b):
    a = as_tensor(a)
    b = as_tensor(b)
    return Tensor(
        np.add(a.data, b.data),
        _parents=(a, b),
        _vjp=lambda g: [unbroadcast(g, a.data.shape), unbroadcast(g, b.data.shape)],
    )


def mul(a, b):
    a = as_tensor(a)
    b = as_tensor(b)
    return Tensor(
        np.multiply(a.data, b.data),
        _parents=(a, b),
        _vjp=lambda g: [
            unbroadcast(np.multiply(g, b.data), a.data.shape),
            unbroadcast(np.multiply(g, a.data), b.data.shape),
        ],
    )


def _reciprocal(b):
    b = as_tensor(b)
    inv = 1.0 / b.data
    return Tensor(inv, _parents=(b,), _vjp=lambda g: (-g * inv * inv,))


def div(a, b):
    return mul(a, _reciprocal(b))
