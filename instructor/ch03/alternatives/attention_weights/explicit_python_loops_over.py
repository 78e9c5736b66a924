"""explicit Python loops over the tokens with torch.dot and F.softmax"""

import torch
import torch.nn.functional as F


def attention_weights(inputs):
    """One query token at a time: dot products with every token, then a softmax."""
    n = inputs.shape[0]
    rows = []
    for i in range(n):
        scores = torch.stack([torch.dot(inputs[i], inputs[j]) for j in range(n)])
        rows.append(F.softmax(scores, dim=0))
    return torch.stack(rows)


def context_vectors(inputs):
    """Row i = sum over j of weights[i, j] * inputs[j], summed term by term."""
    weights = attention_weights(inputs)
    out = []
    for i in range(inputs.shape[0]):
        total = torch.zeros_like(inputs[0])
        for j in range(inputs.shape[0]):
            total = total + weights[i, j] * inputs[j]
        out.append(total)
    return torch.stack(out)
