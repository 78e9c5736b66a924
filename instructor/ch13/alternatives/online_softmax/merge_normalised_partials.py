"""keeps the running result already normalised (a running log-sum-exp instead of m and l): each block's own
softmax-weighted sum and log-sum-exp are computed, then merged into the running pair with weights
exp(lse_old - lse_new) and exp(lse_block - lse_new), as split-KV / flash-decoding combines partial results; the block's weighted sum as an einsum over the block's
columns (shared (n, d) values expanded to the rows first)"""


def online_softmax_weighted_sum(
    scores: torch.Tensor, values: torch.Tensor, block_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    n = scores.shape[-1]
    if values.dim() == 2:
        values = values.expand(*scores.shape[:-1], *values.shape)
    lse = torch.full(scores.shape[:-1], float("-inf"), dtype=scores.dtype, device=scores.device)
    out = None
    for start in range(0, n, block_size):
        block = scores[..., start : start + block_size]
        blk_max = block.amax(dim=-1)
        blk_shift = torch.where(blk_max == float("-inf"), torch.zeros_like(blk_max), blk_max)
        p = torch.exp(block - blk_shift.unsqueeze(-1))
        blk_sum = p.sum(dim=-1)
        blk_out = torch.einsum(
            "...c,...cd->...d", p, values[..., start : start + block_size, :].to(scores.dtype)
        ) / blk_sum.clamp_min(torch.finfo(scores.dtype).tiny).unsqueeze(-1)
        blk_lse = blk_shift + torch.log(blk_sum)  # -inf for an all-masked block
        top = torch.maximum(lse, blk_lse)
        top = torch.where(top == float("-inf"), torch.zeros_like(top), top)
        w_old, w_blk = torch.exp(lse - top), torch.exp(blk_lse - top)
        new_lse = top + torch.log(w_old + w_blk)
        total = w_old + w_blk
        safe_total = torch.where(total == 0, torch.ones_like(total), total)
        if out is None:
            out = blk_out * (w_blk / safe_total).unsqueeze(-1)
        else:
            out = out * (w_old / safe_total).unsqueeze(-1) + blk_out * (w_blk / safe_total).unsqueeze(-1)
        lse = new_lse
    return out, lse
