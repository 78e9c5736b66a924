"""SiLU as x / (1 + exp(-x)); FeedForward calls PyTorch's silu (only SiLU itself is written from scratch)"""

import torch.nn.functional as F


class SiLU(nn.Module):
    def forward(self, x):
        return x / (1 + torch.exp(-x))


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        emb_dim, hidden_dim, dtype = cfg["emb_dim"], cfg["hidden_dim"], cfg["dtype"]
        self.fc1 = nn.Linear(emb_dim, hidden_dim, bias=False, dtype=dtype)
        self.fc2 = nn.Linear(emb_dim, hidden_dim, bias=False, dtype=dtype)
        self.fc3 = nn.Linear(hidden_dim, emb_dim, bias=False, dtype=dtype)

    def forward(self, x):
        return self.fc3(F.silu(self.fc1(x)) * self.fc2(x))
