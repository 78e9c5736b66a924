"""FlashAttention-1's loop order: key/value blocks outer, query blocks inner, with the running max,
normaliser and unnormalised output of every query row kept in full-length (n_queries) buffers updated in
place; einsum for the tile products; all key blocks visited (fully masked tiles just add nothing)"""


def flash_attention_forward(
    Q: torch.Tensor,
    K: torch.Tensor,
    V: torch.Tensor,
    is_causal: bool = False,
    q_block_size: int = 16,
    k_block_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    *lead, n_q, d = Q.shape
    n_k = K.shape[-2]
    scale = d**-0.5
    run_max = Q.new_full((*lead, n_q), float("-inf"))
    run_sum = Q.new_zeros((*lead, n_q))
    run_out = Q.new_zeros((*lead, n_q, V.shape[-1]))
    for kb in range((n_k + k_block_size - 1) // k_block_size):
        ks = slice(kb * k_block_size, min((kb + 1) * k_block_size, n_k))
        Kj, Vj = K[..., ks, :], V[..., ks, :]
        key_pos = torch.arange(ks.start, ks.stop, device=Q.device)
        for qb in range((n_q + q_block_size - 1) // q_block_size):
            qs = slice(qb * q_block_size, min((qb + 1) * q_block_size, n_q))
            S = torch.einsum("...qd,...kd->...qk", Q[..., qs, :], Kj) * scale
            if is_causal:
                query_pos = torch.arange(qs.start, qs.stop, device=Q.device)
                S = S.masked_fill(key_pos[None, :] > query_pos[:, None], float("-inf"))
            old = run_max[..., qs]
            new = torch.maximum(old, S.amax(dim=-1))
            safe = new.masked_fill(new == float("-inf"), 0.0)
            P = torch.exp(S - safe.unsqueeze(-1))
            factor = torch.exp(old - safe)
            run_sum[..., qs] = run_sum[..., qs] * factor + P.sum(dim=-1)
            run_out[..., qs, :] = run_out[..., qs, :] * factor.unsqueeze(-1) + torch.einsum("...qk,...kd->...qd", P, Vj)
            run_max[..., qs] = new
    return run_out / run_sum.unsqueeze(-1), run_max + torch.log(run_sum)
