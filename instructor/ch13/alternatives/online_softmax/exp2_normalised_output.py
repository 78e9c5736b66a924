"""base-2 exponentials on scores times log2(e), as GPU kernels do, and a running output that is kept
normalised after every block (rescaled by l_old * alpha / l_new) instead of divided at the end"""

import math

import torch


def online_softmax_weighted_sum(scores, values, block_size=16):
    log2e = 1.0 / math.log(2.0)
    lead = scores.shape[:-1]
    m = torch.full((*lead, 1), -float("inf"), dtype=scores.dtype)
    norm = torch.zeros((*lead, 1), dtype=scores.dtype)
    out = torch.zeros((*lead, values.shape[-1]), dtype=scores.dtype)
    n = scores.shape[-1]
    start = 0
    while start < n:
        end = min(n, start + block_size)
        s = scores[..., start:end] * log2e
        m_new = torch.max(m, s.max(dim=-1, keepdim=True).values)
        safe = torch.where(m_new == -float("inf"), torch.zeros_like(m_new), m_new)
        p = torch.exp2(s - safe)
        alpha = torch.exp2(m - safe)
        l_new = norm * alpha + p.sum(dim=-1, keepdim=True)
        weighted = torch.matmul(p.unsqueeze(-2), values[..., start:end, :]).squeeze(-2)
        out = torch.where(l_new > 0, (out * norm * alpha + weighted) / l_new, out)
        m, norm = m_new, l_new
        start = end
    lse = (m + torch.log2(norm)).squeeze(-1) / log2e
    return out, lse
