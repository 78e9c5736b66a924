"""torch.matmul and F.softmax, one query token at a time"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention_v1(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.d_out = d_out
        self.W_query = nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        keys = torch.matmul(x, self.W_key)
        values = torch.matmul(x, self.W_value)
        rows = []
        for token in x:
            query = torch.matmul(token, self.W_query)
            weights = F.softmax(torch.matmul(keys, query) / math.sqrt(self.d_out), dim=0)
            rows.append(torch.matmul(weights, values))
        return torch.stack(rows)
