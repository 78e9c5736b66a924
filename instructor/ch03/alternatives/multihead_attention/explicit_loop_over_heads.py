"""explicit loop over the heads on column slices of the projections; the mask built in forward"""

import math

import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        if d_out % num_heads:
            raise ValueError("d_out must be a multiple of num_heads")
        self.num_heads = num_heads
        self.head_dim = d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        n = x.shape[1]
        queries, keys, values = self.W_query(x), self.W_key(x), self.W_value(x)
        future = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        heads = []
        for h in range(self.num_heads):
            cols = slice(h * self.head_dim, (h + 1) * self.head_dim)
            q, k, v = queries[..., cols], keys[..., cols], values[..., cols]
            scores = (q @ k.transpose(-2, -1)).masked_fill(future, -math.inf) / math.sqrt(self.head_dim)
            heads.append(self.dropout(scores.softmax(dim=-1)) @ v)
        return self.out_proj(torch.cat(heads, dim=-1))
