"""einsum throughout; the queries scaled by 1/sqrt(d_out) before the dot product"""

import math

import torch
import torch.nn as nn


class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))
        self.scale = 1.0 / math.sqrt(d_out)

    def forward(self, x):
        queries = torch.einsum("ti,io->to", x, self.W_query) * self.scale
        keys = torch.einsum("ti,io->to", x, self.W_key)
        values = torch.einsum("ti,io->to", x, self.W_value)
        weights = torch.einsum("to,so->ts", queries, keys).softmax(dim=-1)
        return torch.einsum("ts,so->to", weights, values)
