"""torch.max(...).values for the maximum and masked_fill for an all -inf slice; cross-entropy as the mean of
-(one_hot * log_probs) summed over classes, the one-hot built with scatter_"""


def logsumexp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    m = torch.max(x, dim=dim, keepdim=True).values
    m = m.masked_fill(m == float("-inf"), 0.0)
    total = torch.exp(x - m).sum(dim=dim, keepdim=True)
    return (torch.log(total) + m).squeeze(dim)


def stable_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    e = torch.exp(x - torch.max(x, dim=dim, keepdim=True).values)
    return e / torch.sum(e, dim=dim, keepdim=True)


def cross_entropy_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    num_classes = logits.shape[-1]
    flat = logits.reshape(-1, num_classes)
    log_probs = flat - logsumexp(flat, dim=1).unsqueeze(1)
    one_hot = torch.zeros_like(flat).scatter_(1, targets.reshape(-1, 1), 1.0)
    return -(one_hot * log_probs).sum() / flat.shape[0]
