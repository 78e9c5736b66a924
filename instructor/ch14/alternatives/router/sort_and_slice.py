"""a descending sort of the probabilities, sliced to top_k, renormalised with exp/log arithmetic"""

import torch


def route(router_logits, top_k):
    log_probs = torch.log_softmax(router_logits.to(torch.float32), dim=-1)
    sorted_log_probs, order = log_probs.sort(dim=-1, descending=True)
    kept = sorted_log_probs[..., :top_k]
    weights = torch.exp(kept - torch.logsumexp(kept, dim=-1, keepdim=True))
    return weights, order[..., :top_k].to(torch.int64)
