"""Forward through the op functions (matmul, add, tanh) instead of operators; the update stores new
Tensor(p.data - lr * p.grad, requires_grad=True) back under each key (fresh .grad None)"""


def train_step(params, x, targets, lr):
    h = tanh(add(matmul(Tensor(x), params["W1"]), params["b1"]))
    logits = add(matmul(h, params["W2"]), params["b2"])
    loss = cross_entropy(logits, np.asarray(targets))
    value = loss.item()
    loss.backward()
    for key in list(params):
        old = params[key]
        params[key] = Tensor(old.data - lr * old.grad, requires_grad=True)
    return float(value)
