"""a stable sort of the flat choices by expert gives each choice its rank within its expert"""

import math

import torch


def expert_capacity(num_tokens, num_experts, top_k, capacity_factor):
    return int(math.ceil(capacity_factor * num_tokens * top_k / num_experts))


def capacity_mask(indices, num_experts, capacity):
    flat = indices.flatten()
    order = flat.argsort(stable=True)
    counts = torch.bincount(flat, minlength=num_experts)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(flat)
    rank[order] = torch.arange(flat.numel()) - starts[flat[order]]
    return (rank < capacity).view_as(indices)
