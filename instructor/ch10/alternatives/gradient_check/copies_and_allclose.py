"""numerical_grad perturbs fresh copies of the inputs (the originals are never written); gradient_check compares
with np.allclose(analytic, numeric, rtol=rtol, atol=atol), which is the same |a - n| <= atol + rtol |n| test"""


def numerical_grad(f, inputs, eps=1e-6):
    result = []
    for i, x in enumerate(inputs):
        g = np.zeros(np.shape(x), dtype=np.float64)
        for index in np.ndindex(*np.shape(x)):
            plus = [np.array(v, dtype=np.float64) for v in inputs]
            minus = [np.array(v, dtype=np.float64) for v in inputs]
            plus[i][index] += eps
            minus[i][index] -= eps
            g[index] = (float(f(*plus)) - float(f(*minus))) / (2.0 * eps)
        result.append(g)
    return result


def gradient_check(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    f(*leaves).backward()

    def plain(*xs):
        return f(*(Tensor(x) for x in xs)).data

    numeric = numerical_grad(plain, arrays, eps=eps)
    for leaf, num in zip(leaves, numeric):
        ana = leaf.grad if leaf.grad is not None else np.zeros(num.shape)
        if not np.allclose(ana, num, rtol=rtol, atol=atol):
            return False
    return True
