"""div's VJP for b from the output: -(grad / b) * (a / b); each VJP skips the unbroadcast when the shapes already match"""


def _to(grad, shape):
    return grad if grad.shape == tuple(shape) else unbroadcast(grad, shape)


def add(a, b) -> Tensor:
    x, y = as_tensor(a), as_tensor(b)

    def vjp(grad):
        return _to(grad, x.shape), _to(grad, y.shape)

    return Tensor(x.data + y.data, _parents=(x, y), _vjp=vjp)


def mul(a, b) -> Tensor:
    x, y = as_tensor(a), as_tensor(b)

    def vjp(grad):
        return _to(y.data * grad, x.shape), _to(x.data * grad, y.shape)

    return Tensor(x.data * y.data, _parents=(x, y), _vjp=vjp)


def div(a, b) -> Tensor:
    x, y = as_tensor(a), as_tensor(b)
    out = x.data / y.data

    def vjp(grad):
        g_over_y = grad / y.data
        return _to(g_over_y, x.shape), _to(-g_over_y * out, y.shape)

    return Tensor(out, _parents=(x, y), _vjp=vjp)
