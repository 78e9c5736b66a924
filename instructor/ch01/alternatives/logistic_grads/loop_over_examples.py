"""one example at a time under inference_mode, the loss from the clamped probabilities like F.binary_cross_entropy"""


def logistic_regression_grads(x, y, w, b):
    with torch.inference_mode():
        n, d = x.shape
        loss = torch.zeros(())
        grad_w = torch.zeros(d)
        grad_b = torch.zeros(())
        for i in range(n):
            p = torch.sigmoid(torch.dot(x[i], w) + b)
            loss = loss - (y[i] * torch.log(p).clamp(min=-100) + (1 - y[i]) * torch.log(1 - p).clamp(min=-100))
            grad_w = grad_w + (p - y[i]) * x[i]
            grad_b = grad_b + (p - y[i])
        return loss / n, grad_w / n, grad_b / n
