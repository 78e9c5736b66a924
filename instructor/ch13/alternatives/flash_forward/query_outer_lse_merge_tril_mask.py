"""query blocks outer, but every key block is visited (no causal skipping), each tile's causal mask is a
torch.ones(...).tril(diagonal=q_start - k_start) of the tile's size, and each tile's own normalised output and
log-sum-exp are merged into the running ones (a running L instead of m and norm); blocks joined with torch.cat"""


def flash_attention_forward(
    Q: torch.Tensor,
    K: torch.Tensor,
    V: torch.Tensor,
    is_causal: bool = False,
    q_block_size: int = 16,
    k_block_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    scale = Q.shape[-1] ** -0.5
    neg_inf = float("-inf")
    outs, lses = [], []
    for qi, Q_i in enumerate(torch.split(Q, q_block_size, dim=-2)):
        q_start = qi * q_block_size
        run_lse = torch.full(Q_i.shape[:-1], neg_inf, dtype=Q.dtype, device=Q.device)
        run_out = torch.zeros_like(Q_i)
        for kj, (K_j, V_j) in enumerate(
            zip(torch.split(K, k_block_size, dim=-2), torch.split(V, k_block_size, dim=-2))
        ):
            k_start = kj * k_block_size
            S = torch.matmul(Q_i, K_j.transpose(-1, -2)) * scale
            if is_causal:
                keep = torch.ones(S.shape[-2:], dtype=torch.bool, device=Q.device).tril(diagonal=q_start - k_start)
                S = S.masked_fill(~keep, neg_inf)
            m = S.amax(dim=-1, keepdim=True)
            m = torch.where(m == neg_inf, torch.zeros_like(m), m)
            P = torch.exp(S - m)
            norm = P.sum(dim=-1)
            tile_lse = m.squeeze(-1) + torch.log(norm)
            tile_out = torch.matmul(P, V_j) / norm.clamp_min(torch.finfo(Q.dtype).tiny).unsqueeze(-1)
            top = torch.maximum(run_lse, tile_lse)
            top = torch.where(top == neg_inf, torch.zeros_like(top), top)
            a, b = torch.exp(run_lse - top), torch.exp(tile_lse - top)
            denom = torch.where(a + b == 0, torch.ones_like(a), a + b)
            run_out = run_out * (a / denom).unsqueeze(-1) + tile_out * (b / denom).unsqueeze(-1)
            run_lse = top + torch.log(a + b)
        outs.append(run_out)
        lses.append(run_lse)
    return torch.cat(outs, dim=-2), torch.cat(lses, dim=-1)
