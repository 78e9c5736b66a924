"""loss written with logsigmoid, gradients with einsum, inputs detached instead of no_grad"""


def logistic_regression_grads(x, y, w, b):
    x, y, w, b = x.detach(), y.detach(), w.detach(), b.detach()
    z = torch.einsum("nd,d->n", x, w) + b
    loss = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
    residual = torch.sigmoid(z) - y
    grad_w = torch.einsum("nd,n->d", x, residual) / len(y)
    grad_b = residual.mean()
    return loss, grad_w, grad_b
