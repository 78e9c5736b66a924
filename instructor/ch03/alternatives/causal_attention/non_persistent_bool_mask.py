"""non-persistent bool mask built with torch.tril; a Python loop over the batch with torch.mm"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.dropout = nn.Dropout(dropout)
        allowed = torch.tril(torch.ones(context_length, context_length, dtype=torch.bool))
        self.register_buffer("mask", ~allowed, persistent=False)

    def forward(self, x):
        n = x.shape[1]
        out = []
        for seq in x:
            q, k, v = self.W_query(seq), self.W_key(seq), self.W_value(seq)
            scores = torch.mm(q, k.t()) / math.sqrt(k.shape[1])
            scores = scores.masked_fill(self.mask[:n, :n], float("-inf"))
            weights = self.dropout(F.softmax(scores, dim=1))
            out.append(torch.mm(weights, v))
        return torch.stack(out)
