"""Loss written out with logsigmoid (log(1 - p) = logsigmoid(-z)); inputs detached instead of
torch.no_grad(); grad_w as the mean of (p - y) x_i over the rows, grad_b as mean(p - y)."""


def logistic_regression_grads(x, y, w, b):
    x, y, w, b = x.detach(), y.detach(), w.detach(), b.detach()
    z = x @ w + b
    loss = -(y * F.logsigmoid(z) + (1 - y) * F.logsigmoid(-z)).mean()
    diff = torch.sigmoid(z) - y
    grad_w = (diff.unsqueeze(1) * x).mean(dim=0)
    grad_b = diff.mean()
    return loss, grad_w, grad_b
