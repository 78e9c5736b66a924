"""torch.rand scaled to the interval; einsum; alpha as a float"""


class LoRALayer(nn.Module):
    """alpha * x A B."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, alpha: float):
        super().__init__()
        self.alpha = float(alpha)
        self.A = nn.Parameter((torch.rand(in_dim, rank) * 2 - 1) / rank**0.5)
        self.B = nn.Parameter(torch.zeros(rank, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low_rank = torch.einsum("...i,ir->...r", x, self.A)
        return self.alpha * torch.einsum("...r,ro->...o", low_rank, self.B)
