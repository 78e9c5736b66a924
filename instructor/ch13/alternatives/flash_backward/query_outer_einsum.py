"""query blocks outer, key blocks inner (dK, dV accumulated into full-size buffers with index_add_ over
the block's rows), D computed per query block, einsum for every tile product, and the saved tensors
handed back in the order (L, Q, K, V, O) as in CS336's reference"""


def flash_attention_backward(
    Q: torch.Tensor,
    K: torch.Tensor,
    V: torch.Tensor,
    attn_out: torch.Tensor,
    L: torch.Tensor,
    dO: torch.Tensor,
    is_causal: bool = False,
    q_block_size: int = 16,
    k_block_size: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n_q, d = Q.shape[-2], Q.shape[-1]
    n_k = K.shape[-2]
    scale = d**-0.5
    dQ = Q.new_zeros(Q.shape)
    dK = K.new_zeros(K.shape)
    dV = V.new_zeros(V.shape)
    for q0 in range(0, n_q, q_block_size):
        rows = torch.arange(q0, min(q0 + q_block_size, n_q), device=Q.device)
        Qi, Oi, dOi, Li = Q[..., rows, :], attn_out[..., rows, :], dO[..., rows, :], L[..., rows]
        Di = torch.einsum("...qd,...qd->...q", dOi, Oi)
        dQi = torch.zeros_like(Qi)
        for k0 in range(0, n_k, k_block_size):
            cols = torch.arange(k0, min(k0 + k_block_size, n_k), device=Q.device)
            Kj, Vj = K[..., cols, :], V[..., cols, :]
            S = torch.einsum("...qd,...kd->...qk", Qi, Kj) * scale
            if is_causal:
                S = torch.where(cols[None, :] <= rows[:, None], S, torch.tensor(float("-inf"), device=Q.device))
            P = torch.exp(S - Li[..., :, None])
            dP = torch.einsum("...qd,...kd->...qk", dOi, Vj)
            dS = P * (dP - Di[..., :, None])
            dQi = dQi + torch.einsum("...qk,...kd->...qd", dS, Kj) * scale
            dK.index_add_(-2, cols, torch.einsum("...qk,...qd->...kd", dS, Qi) * scale)
            dV.index_add_(-2, cols, torch.einsum("...qk,...qd->...kd", P, dOi))
        dQ[..., rows, :] = dQi
    return dQ, dK, dV


class FlashAttention2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Q, K, V, is_causal=False, q_block_size=16, k_block_size=16):
        attn_out, L = flash_attention_forward(
            Q, K, V, is_causal=is_causal, q_block_size=q_block_size, k_block_size=k_block_size
        )
        ctx.save_for_backward(L, Q, K, V, attn_out)
        ctx.is_causal = is_causal
        ctx.q_block_size = q_block_size
        ctx.k_block_size = k_block_size
        return attn_out

    @staticmethod
    def backward(ctx, dO):
        L, Q, K, V, attn_out = ctx.saved_tensors
        grads = flash_attention_backward(
            Q,
            K,
            V,
            attn_out,
            L,
            dO,
            is_causal=ctx.is_causal,
            q_block_size=ctx.q_block_size,
            k_block_size=ctx.k_block_size,
        )
        return (*grads, None, None, None)
