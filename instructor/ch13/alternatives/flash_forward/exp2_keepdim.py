"""base-2 exponentials with the scale folded into log2(e) / sqrt(d), the running max and normaliser
kept as (..., Bq, 1) columns, blocks listed up front, and the output divided by the normaliser once at the end"""

import math

import torch


def flash_attention_forward(Q, K, V, is_causal=False, q_block_size=16, k_block_size=16):
    n_q, n_k, d = Q.shape[-2], K.shape[-2], Q.shape[-1]
    c = math.log2(math.e) / math.sqrt(d)
    q_blocks = [(s, min(s + q_block_size, n_q)) for s in range(0, n_q, q_block_size)]
    k_blocks = [(s, min(s + k_block_size, n_k)) for s in range(0, n_k, k_block_size)]
    outs, lses = [], []
    for qs, qe in q_blocks:
        q = Q[..., qs:qe, :]
        m = torch.full((*q.shape[:-1], 1), -math.inf, dtype=Q.dtype)
        norm = torch.zeros_like(m)
        acc = torch.zeros_like(q)
        for ks, ke in k_blocks:
            if is_causal and ks > qe - 1:
                break
            s2 = torch.matmul(q, K[..., ks:ke, :].transpose(-1, -2)) * c
            if is_causal:
                keep = torch.arange(ks, ke).view(1, -1) <= torch.arange(qs, qe).view(-1, 1)
                s2 = s2.masked_fill(~keep, -math.inf)
            m_new = torch.maximum(m, s2.amax(-1, keepdim=True))
            p = torch.exp2(s2 - m_new)
            scale_old = torch.exp2(m - m_new)
            norm = norm * scale_old + p.sum(-1, keepdim=True)
            acc = acc * scale_old + torch.matmul(p, V[..., ks:ke, :])
            m = m_new
        outs.append(acc / norm)
        lses.append(((m + torch.log2(norm)) * math.log(2.0)).squeeze(-1))
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)
