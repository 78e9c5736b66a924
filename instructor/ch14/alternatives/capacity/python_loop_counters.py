"""math.ceil for the capacity, and a Python loop over tokens and choices with one counter per expert"""

import math

import torch


def expert_capacity(num_tokens, num_experts, top_k, capacity_factor):
    return math.ceil(capacity_factor * num_tokens * top_k / num_experts)


def capacity_mask(indices, num_experts, capacity):
    used = [0] * num_experts
    keep = torch.zeros(indices.shape, dtype=torch.bool)
    for t in range(indices.shape[0]):
        for j in range(indices.shape[1]):
            e = int(indices[t, j])
            if used[e] < capacity:
                used[e] += 1
                keep[t, j] = True
    return keep
