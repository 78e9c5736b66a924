"""top-k of the logits first, then a softmax over the kept logits alone (the full softmax's normaliser cancels)"""

import torch


def route(router_logits, top_k):
    logits, indices = torch.topk(router_logits.float(), top_k, dim=-1)
    return torch.softmax(logits, dim=-1), indices
