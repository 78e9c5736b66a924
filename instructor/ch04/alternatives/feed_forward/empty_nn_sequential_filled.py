"""empty nn.Sequential filled with append; named modules called explicitly in forward"""


class FeedForward(nn.Module):
    """The position-wise MLP, its three modules appended one by one."""

    def __init__(self, cfg: dict):
        super().__init__()
        d = cfg["emb_dim"]
        self.layers = nn.Sequential()
        self.layers.append(nn.Linear(in_features=d, out_features=4 * d, bias=True))
        self.layers.append(GELU())
        self.layers.append(nn.Linear(in_features=4 * d, out_features=d, bias=True))

    def forward(self, x):
        expand, act, project = self.layers
        return project(act(expand(x)))
