"""softmax with in-place sub_/exp_/div_ on a fresh tensor; logsumexp reduces without keepdim and
unsqueezes the maximum back; cross-entropy picks the target log-probabilities with arange indexing"""


def stable_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    out = x - x.max(dim=dim, keepdim=True)[0]
    out.exp_()
    out.div_(out.sum(dim=dim, keepdim=True))
    return out


def logsumexp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    m = x.amax(dim=dim)
    m = torch.where(m == float("-inf"), torch.zeros_like(m), m)
    return m + (x - m.unsqueeze(dim)).exp().sum(dim=dim).log()


def cross_entropy_from_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    flat = logits.view(-1, logits.size(-1)) if logits.is_contiguous() else logits.reshape(-1, logits.size(-1))
    t = targets.reshape(-1)
    rows = torch.arange(flat.shape[0], device=flat.device)
    losses = logsumexp(flat, dim=-1) - flat[rows, t]
    return losses.sum() / losses.numel()
