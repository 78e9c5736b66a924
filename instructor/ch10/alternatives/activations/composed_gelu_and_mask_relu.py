"""GELU composed from the engine's own ops (mul, add, tanh: no VJP of its own); ReLU as a multiply by a constant 0/1
mask; tanh's VJP via 1/cosh(a)**2; log's via np.reciprocal"""


def exp(a):
    a = as_tensor(a)
    return Tensor(np.exp(a.data), _parents=(a,), _vjp=lambda g: (g * np.exp(a.data),))


def log(a):
    a = as_tensor(a)
    return Tensor(np.log(a.data), _parents=(a,), _vjp=lambda g: (g * np.reciprocal(a.data),))


def tanh(a):
    a = as_tensor(a)
    return Tensor(np.tanh(a.data), _parents=(a,), _vjp=lambda g: (g / np.cosh(a.data) ** 2,))


def relu(a):
    a = as_tensor(a)
    return mul(a, (a.data > 0).astype(np.float64))


def gelu(a):
    a = as_tensor(a)
    inner = math.sqrt(2.0 / math.pi) * (a + 0.044715 * (a * a * a))
    return 0.5 * a * (1.0 + tanh(inner))
