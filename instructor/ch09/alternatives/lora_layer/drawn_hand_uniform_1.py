"""A drawn by hand with uniform_(-1/sqrt(rank), 1/sqrt(rank)); x @ (A @ B) * alpha"""


class LoRALayer(nn.Module):
    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        bound = 1 / math.sqrt(rank)
        self.A = nn.Parameter(torch.empty(in_dim, rank).uniform_(-bound, bound))
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.alpha = alpha

    def forward(self, x):
        return x @ (self.A @ self.B) * self.alpha
