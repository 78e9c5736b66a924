"""the mean square from torch.linalg.vector_norm; type_as for the cast back"""


class RMSNorm(nn.Module):
    """Root-mean-square normalization with a learned scale."""

    def __init__(self, emb_dim: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(emb_dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = x.to(torch.float32)
        mean_square = torch.linalg.vector_norm(wide, dim=-1, keepdim=True).pow(2) / x.shape[-1]
        return (self.weight * (wide * (mean_square + self.variance_epsilon).rsqrt())).type_as(x)
