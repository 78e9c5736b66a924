"""bincount for the counts, topk of the logits (same order as of the probabilities), logsumexp by hand"""

import torch


def load_balancing_loss(router_logits, top_k):
    logits = router_logits.float().flatten(0, -2)
    n, e = logits.shape
    counts = torch.bincount(logits.topk(top_k, dim=-1).indices.flatten(), minlength=e).float()
    p = logits.softmax(dim=-1).sum(dim=0) / n
    return e * torch.dot(counts / n, p)


def router_z_loss(router_logits):
    logits = router_logits.float()
    m = logits.amax(dim=-1, keepdim=True)
    lse = (m + (logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)
    return lse.pow(2).mean()
