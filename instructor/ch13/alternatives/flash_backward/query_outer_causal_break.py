"""query blocks outer and key blocks inner (the reverse of FlashAttention-2's backward order): dQ_i kept in a
local and written once, dK and dV accumulated in place into full-size buffers, D computed per query block,
the inner loop broken off at the first key block past the diagonal when causal; the Function keeps its flags in
a dict on ctx"""


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
    scale = 1.0 / math.sqrt(d)
    dQ = torch.empty_like(Q)
    dK = torch.zeros_like(K)
    dV = torch.zeros_like(V)
    for q0 in range(0, n_q, q_block_size):
        q1 = min(q0 + q_block_size, n_q)
        Q_i, dO_i = Q[..., q0:q1, :], dO[..., q0:q1, :]
        D_i = (dO_i * attn_out[..., q0:q1, :]).sum(-1, keepdim=True)
        L_i = L[..., q0:q1].unsqueeze(-1)
        dQ_i = torch.zeros_like(Q_i)
        for k0 in range(0, n_k, k_block_size):
            if is_causal and k0 > q1 - 1:
                break
            k1 = min(k0 + k_block_size, n_k)
            K_j, V_j = K[..., k0:k1, :], V[..., k0:k1, :]
            S = torch.matmul(Q_i, K_j.transpose(-1, -2)) * scale
            if is_causal:
                q_pos = torch.arange(q0, q1, device=Q.device).view(-1, 1)
                k_pos = torch.arange(k0, k1, device=Q.device).view(1, -1)
                S = torch.where(k_pos <= q_pos, S, torch.full_like(S, float("-inf")))
            P = torch.exp(S - L_i)
            dV[..., k0:k1, :] += torch.matmul(P.transpose(-1, -2), dO_i)
            dS = P * (torch.matmul(dO_i, V_j.transpose(-1, -2)) - D_i)
            dQ_i += torch.matmul(dS, K_j) * scale
            dK[..., k0:k1, :] += torch.matmul(dS.transpose(-1, -2), Q_i) * scale
        dQ[..., q0:q1, :] = dQ_i
    return dQ, dK, dV


class FlashAttention2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Q, K, V, is_causal=False, q_block_size=16, k_block_size=16):
        attn_out, L = flash_attention_forward(Q, K, V, is_causal, q_block_size, k_block_size)
        ctx.save_for_backward(attn_out, L, Q, K, V)
        ctx.options = {"is_causal": is_causal, "q_block_size": q_block_size, "k_block_size": k_block_size}
        return attn_out

    @staticmethod
    def backward(ctx, dO):
        attn_out, L, Q, K, V = ctx.saved_tensors
        dQ, dK, dV = flash_attention_backward(Q, K, V, attn_out, L, dO, **ctx.options)
        return dQ, dK, dV, None, None, None
