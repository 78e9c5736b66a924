"""einsum over unflattened (batch, tokens, heads, head_dim) projections; queries pre-scaled; masked_fill with torch.finfo(dtype).min"""

import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} does not divide d_out={d_out}")
        self.num_heads = num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        n = x.shape[1]
        q = self.W_query(x).unflatten(-1, (self.num_heads, -1))
        k = self.W_key(x).unflatten(-1, (self.num_heads, -1))
        v = self.W_value(x).unflatten(-1, (self.num_heads, -1))
        q = q / q.shape[-1] ** 0.5
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k)
        scores = scores.masked_fill(self.mask[:n, :n].bool(), torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))
        context = torch.einsum("bhqk,bkhd->bqhd", weights, v).flatten(start_dim=2)
        return self.out_proj(context)
