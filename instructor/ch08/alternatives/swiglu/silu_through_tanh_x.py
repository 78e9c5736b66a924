"""SiLU through tanh, x * (1 + tanh(x / 2)) / 2; the output projection declared first"""


class SiLU(nn.Module):
    """sigmoid(x) = (1 + tanh(x / 2)) / 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(0.5 * x))


class FeedForward(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.fc3 = nn.Linear(cfg["hidden_dim"], cfg["emb_dim"], bias=False, dtype=cfg["dtype"])
        self.fc1 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])
        self.fc2 = nn.Linear(cfg["emb_dim"], cfg["hidden_dim"], bias=False, dtype=cfg["dtype"])
        self.activation = SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.activation(self.fc1(x))
        up = self.fc2(x)
        return self.fc3(gate * up)
