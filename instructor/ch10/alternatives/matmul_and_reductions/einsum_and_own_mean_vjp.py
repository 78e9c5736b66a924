"""matmul's VJP with np.einsum (broadcasting ellipsis); sum's VJP multiplies ones by the gradient reshaped to the
kept-dims shape; mean has its own VJP dividing by the count; transpose by an explicit axis permutation"""


def _norm_axes(axis, ndim):
    if axis is None:
        return set(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    return {ax + ndim if ax < 0 else ax for ax in axis}


def matmul(a, b):
    a, b = as_tensor(a), as_tensor(b)

    def vjp(g):
        ga = np.einsum("...nm,...km->...nk", g, b.data)
        gb = np.einsum("...nk,...nm->...km", a.data, g)
        return unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)

    return Tensor(np.matmul(a.data, b.data), _parents=(a, b), _vjp=vjp)


def summation(a, axis=None, keepdims=False):
    a = as_tensor(a)
    axes = _norm_axes(axis, a.ndim)
    kept = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    out = np.sum(a.data, axis=tuple(sorted(axes)), keepdims=keepdims)
    return Tensor(out, _parents=(a,), _vjp=lambda g: (np.ones(a.shape) * np.reshape(g, kept),))


def mean(a, axis=None, keepdims=False):
    a = as_tensor(a)
    axes = _norm_axes(axis, a.ndim)
    kept = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    count = 1
    for i in axes:
        count *= a.shape[i]
    out = np.mean(a.data, axis=tuple(sorted(axes)), keepdims=keepdims)
    return Tensor(out, _parents=(a,), _vjp=lambda g: (np.ones(a.shape) * np.reshape(g, kept) / count,))


def reshape(a, shape):
    a = as_tensor(a)
    return Tensor(np.reshape(a.data, shape), _parents=(a,), _vjp=lambda g: (np.reshape(g, a.shape),))


def transpose(a, dim0=-2, dim1=-1):
    a = as_tensor(a)
    perm = list(range(a.ndim))
    perm[dim0], perm[dim1] = perm[dim1], perm[dim0]
    return Tensor(np.transpose(a.data, perm), _parents=(a,), _vjp=lambda g: (np.transpose(g, perm),))
