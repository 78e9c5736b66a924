"""the leading dimensions flattened and looped over, one head at a time with 2-D tiles; einsum for
the products; no causal skipping: future key blocks are fully masked with torch.where and add
exp(-inf) = 0"""

import math

import torch


def flash_attention_forward(Q, K, V, is_causal=False, q_block_size=16, k_block_size=16):
    lead = Q.shape[:-2]
    n_q, d = Q.shape[-2:]
    n_k = K.shape[-2]
    q, k, v = Q.reshape(-1, n_q, d), K.reshape(-1, n_k, d), V.reshape(-1, n_k, d)
    out = torch.zeros_like(q)
    lse = torch.zeros(q.shape[:-1], dtype=Q.dtype)
    for h in range(q.shape[0]):
        for qs in range(0, n_q, q_block_size):
            qe = min(qs + q_block_size, n_q)
            qi = q[h, qs:qe]
            m = torch.full((qe - qs,), -math.inf, dtype=Q.dtype)
            norm = torch.zeros(qe - qs, dtype=Q.dtype)
            acc = torch.zeros(qe - qs, d, dtype=Q.dtype)
            for ks in range(0, n_k, k_block_size):
                ke = min(ks + k_block_size, n_k)
                s = torch.einsum("qd,kd->qk", qi, k[h, ks:ke]) / math.sqrt(d)
                if is_causal:
                    future = torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None]
                    s = torch.where(future, torch.tensor(-math.inf, dtype=s.dtype), s)
                m_new = torch.maximum(m, s.max(dim=1).values)
                p = torch.exp(s - m_new[:, None])
                corr = torch.exp(m - m_new)
                norm = corr * norm + p.sum(1)
                acc = corr[:, None] * acc + torch.einsum("qk,kd->qd", p, v[h, ks:ke])
                m = m_new
            out[h, qs:qe] = acc / norm[:, None]
            lse[h, qs:qe] = m + torch.log(norm)
    return out.reshape(*lead, n_q, d), lse.reshape(*lead, n_q)
