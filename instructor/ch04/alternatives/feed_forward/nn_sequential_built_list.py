"""nn.Sequential built from a list; forward loops over the layers"""


class FeedForward(nn.Module):
    """Linear (4x) -> GELU -> Linear, built from a list."""

    def __init__(self, cfg):
        super().__init__()
        emb_dim = cfg["emb_dim"]
        hidden = emb_dim * 4
        modules = [nn.Linear(emb_dim, hidden), GELU(), nn.Linear(hidden, emb_dim)]
        self.layers = nn.Sequential(*modules)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
