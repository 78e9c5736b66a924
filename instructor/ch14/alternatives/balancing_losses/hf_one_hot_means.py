"""Hugging Face's form: a one-hot (tokens, top_k, experts) mask averaged over tokens, summed with P"""

import torch
import torch.nn.functional as F


def load_balancing_loss(router_logits, top_k):
    num_experts = router_logits.shape[-1]
    probs = F.softmax(router_logits.reshape(-1, num_experts).float(), dim=-1)
    _, selected = torch.topk(probs, top_k, dim=-1)
    mask = F.one_hot(selected, num_experts).float()
    tokens_per_expert = mask.mean(dim=0)
    return num_experts * torch.sum(tokens_per_expert * probs.mean(dim=0).unsqueeze(0))


def router_z_loss(router_logits):
    z = torch.logsumexp(router_logits.reshape(-1, router_logits.shape[-1]).float(), dim=-1)
    return torch.mean(z * z)
