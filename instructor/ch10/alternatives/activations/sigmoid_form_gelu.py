"""GELU as a * sigmoid(2u) with a stable sigmoid (0.5 * (1 + tanh u) == sigmoid(2u)) and VJP
sigmoid + a * 2 sigmoid (1 - sigmoid) u'; ReLU by np.where; tanh's VJP recomputes np.tanh"""


def exp(a):
    a = as_tensor(a)
    e = np.exp(a.data)

    def vjp(g):
        return (e * g,)

    return Tensor(e, _parents=(a,), _vjp=vjp)


def log(a):
    a = as_tensor(a)

    def vjp(g):
        return (g / a.data,)

    return Tensor(np.log(a.data), _parents=(a,), _vjp=vjp)


def tanh(a):
    a = as_tensor(a)

    def vjp(g):
        return (g * (1.0 - np.tanh(a.data) ** 2),)

    return Tensor(np.tanh(a.data), _parents=(a,), _vjp=vjp)


def relu(a):
    a = as_tensor(a)

    def vjp(g):
        return (np.where(a.data > 0, g, 0.0),)

    return Tensor(np.where(a.data > 0, a.data, 0.0), _parents=(a,), _vjp=vjp)


def _sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def gelu(a):
    a = as_tensor(a)
    x = a.data
    k = np.sqrt(2.0 / np.pi)
    u = k * (x + 0.044715 * x * x * x)
    s = _sigmoid(2.0 * u)

    def vjp(g):
        du = k * (1.0 + 0.134145 * x * x)
        return (g * (s + x * 2.0 * s * (1.0 - s) * du),)

    return Tensor(x * s, _parents=(a,), _vjp=vjp)
