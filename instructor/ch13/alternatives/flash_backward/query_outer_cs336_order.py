"""the query blocks in the outer loop and the key blocks inside (dK and dV accumulate in full
tensors), D computed per query block, tensors saved in CS336's order (L, Q, K, V, O) and the
block sizes kept as two ctx attributes"""

import math

import torch


def flash_attention_backward(Q, K, V, attn_out, L, dO, is_causal=False, q_block_size=16, k_block_size=16):
    n_q, n_k, d = Q.shape[-2], K.shape[-2], Q.shape[-1]
    scale = d**-0.5
    dQ, dK, dV = torch.zeros_like(Q), torch.zeros_like(K), torch.zeros_like(V)
    for qs in range(0, n_q, q_block_size):
        qe = min(qs + q_block_size, n_q)
        q, do = Q[..., qs:qe, :], dO[..., qs:qe, :]
        Di = (do * attn_out[..., qs:qe, :]).sum(-1, keepdim=True)
        Li = L[..., qs:qe].unsqueeze(-1)
        for ks in range(0, n_k, k_block_size):
            ke = min(ks + k_block_size, n_k)
            if is_causal and ks >= qe:
                break
            k, v = K[..., ks:ke, :], V[..., ks:ke, :]
            s = q @ k.transpose(-1, -2) * scale
            if is_causal:
                s = s.masked_fill(torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None], -math.inf)
            p = torch.exp(s - Li)
            dV[..., ks:ke, :] += p.transpose(-1, -2) @ do
            ds = p * (do @ v.transpose(-1, -2) - Di)
            dQ[..., qs:qe, :] += ds @ k * scale
            dK[..., ks:ke, :] += ds.transpose(-1, -2) @ q * scale
    return dQ, dK, dV


class FlashAttention2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, Q, K, V, is_causal=False, q_block_size=16, k_block_size=16):
        attn_out, L = flash_attention_forward(Q, K, V, is_causal, q_block_size, k_block_size)
        ctx.save_for_backward(L, Q, K, V, attn_out)
        ctx.is_causal = is_causal
        ctx.q_block_size = q_block_size
        ctx.k_block_size = k_block_size
        return attn_out

    @staticmethod
    def backward(ctx, grad_out):
        L, Q, K, V, attn_out = ctx.saved_tensors
        grads = flash_attention_backward(
            Q, K, V, attn_out, L, grad_out, ctx.is_causal, ctx.q_block_size, ctx.k_block_size
        )
        return (*grads, None, None, None)
