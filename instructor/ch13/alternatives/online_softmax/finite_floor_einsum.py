"""a very negative finite start for the running max instead of -inf (no special case for masked
blocks), per-block state updated with einsum, the blocks cut with torch.split"""

import torch


def online_softmax_weighted_sum(scores, values, block_size=16):
    floor = torch.finfo(scores.dtype).min / 2
    m = torch.full(scores.shape[:-1], floor, dtype=scores.dtype)
    norm = torch.zeros(scores.shape[:-1], dtype=scores.dtype)
    acc = torch.zeros(*scores.shape[:-1], values.shape[-1], dtype=scores.dtype)
    value_blocks = torch.split(values, block_size, dim=-2)
    for block, v in zip(torch.split(scores, block_size, dim=-1), value_blocks):
        m_new = torch.maximum(m, block.amax(dim=-1))
        alpha = torch.exp(m - m_new)
        p = torch.exp(block - m_new.unsqueeze(-1))
        norm = norm * alpha + p.sum(-1)
        if v.dim() == 2:
            acc = acc * alpha.unsqueeze(-1) + torch.einsum("...c,cd->...d", p, v)
        else:
            acc = acc * alpha.unsqueeze(-1) + torch.einsum("...c,...cd->...d", p, v)
        m = m_new
    return acc / norm.unsqueeze(-1), m + torch.log(norm)
