"""torch.split into column blocks zipped with torch.split of the values along their key axis, the first block
initialising the running state instead of -inf/0 tensors, and a -inf running max clamped to the dtype's lowest
finite number (exp(-inf - lowest) is 0) instead of a torch.where; the block's weighted sum as a broadcast
product summed over the block's columns, (p[..., None] * values_block).sum(-2), for shared and per-row values alike"""


def online_softmax_weighted_sum(
    scores: torch.Tensor, values: torch.Tensor, block_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    lowest = torch.finfo(scores.dtype).min
    running_max = norm = total = None
    for s_blk, v_blk in zip(torch.split(scores, block_size, dim=-1), torch.split(values, block_size, dim=-2)):
        blk_max = s_blk.max(dim=-1).values
        v_blk = v_blk.to(scores.dtype)
        if running_max is None:
            new_max = blk_max.clamp(min=lowest)
            p = torch.exp(s_blk - new_max[..., None])
            norm = p.sum(-1)
            total = (p.unsqueeze(-1) * v_blk).sum(dim=-2)
        else:
            new_max = torch.maximum(running_max, blk_max).clamp(min=lowest)
            alpha = torch.exp(running_max - new_max)
            p = torch.exp(s_blk - new_max[..., None])
            norm = alpha * norm + p.sum(-1)
            total = alpha[..., None] * total + (p.unsqueeze(-1) * v_blk).sum(dim=-2)
        running_max = new_max
    return total / norm[..., None], running_max + norm.log()
