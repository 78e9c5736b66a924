"""A Python loop over the examples accumulating the per-example loss and gradient, clamped logs, then divided by n."""


def logistic_regression_grads(x, y, w, b):
    with torch.no_grad():
        n, d = x.shape
        loss = torch.zeros((), dtype=x.dtype)
        grad_w = torch.zeros(d, dtype=x.dtype)
        grad_b = torch.zeros((), dtype=x.dtype)
        for i in range(n):
            z = torch.dot(x[i], w) + b
            p = torch.sigmoid(z)
            loss = loss + F.binary_cross_entropy_with_logits(z, y[i])
            grad_w = grad_w + (p - y[i]) * x[i]
            grad_b = grad_b + (p - y[i])
        return loss / n, grad_w / n, grad_b / n
