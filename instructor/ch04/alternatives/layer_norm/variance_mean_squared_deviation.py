"""variance as the mean squared deviation, multiplied by torch.rsqrt"""


class LayerNorm(nn.Module):
    """Normalises the last dimension with the mean squared deviation, then scales and shifts."""

    def __init__(self, emb_dim):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))
        self.eps = 1e-5

    def forward(self, x):
        centered = x - x.mean(-1, keepdim=True)
        var = (centered**2).mean(-1, keepdim=True)
        return centered * torch.rsqrt(var + self.eps) * self.scale + self.shift
