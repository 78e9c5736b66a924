"""matmul's VJP through np.matmul with np.moveaxis for the transposes; sum's VJP via np.broadcast_to of the
gradient reshaped to the kept-dims shape; mean composed as div(summation, count)"""


def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)

    def vjp(g):
        bt = np.moveaxis(b.data, -1, -2)
        at = np.moveaxis(a.data, -1, -2)
        return unbroadcast(np.matmul(g, bt), a.shape), unbroadcast(np.matmul(at, g), b.shape)

    return Tensor(np.matmul(a.data, b.data), _parents=(a, b), _vjp=vjp)


def _axis_tuple(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(ax % ndim for ax in axis)


def summation(a, axis=None, keepdims=False):
    a = as_tensor(a)
    axes = _axis_tuple(axis, a.ndim)
    kept = [1 if i in axes else n for i, n in enumerate(a.shape)]

    def vjp(g):
        return (np.array(np.broadcast_to(np.reshape(g, kept), a.shape)),)

    out = a.data
    for ax in sorted(axes, reverse=True):
        out = np.add.reduce(out, axis=ax)
    if keepdims:
        out = np.reshape(out, kept)
    return Tensor(out, _parents=(a,), _vjp=vjp)


def mean(a, axis=None, keepdims=False):
    a = as_tensor(a)
    count = 1
    for ax in _axis_tuple(axis, a.ndim):
        count *= a.shape[ax]
    return div(summation(a, axis, keepdims), float(count))


def reshape(a, shape):
    a = as_tensor(a)
    original = a.shape
    return Tensor(a.data.reshape(shape), _parents=(a,), _vjp=lambda g: (g.reshape(original),))


def transpose(a, dim0=-2, dim1=-1):
    a = as_tensor(a)
    return Tensor(np.swapaxes(a.data, dim1, dim0), _parents=(a,), _vjp=lambda g: (g.swapaxes(dim0, dim1),))
