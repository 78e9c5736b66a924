"""modules created in data-flow order (norm1, att, norm2, ff) with a helper for the sublayers"""


class TransformerBlock(nn.Module):
    """Two residual sublayers, each normalised first."""

    def __init__(self, cfg):
        super().__init__()
        emb_dim, rate = cfg["emb_dim"], cfg["drop_rate"]
        self.norm1 = LayerNorm(emb_dim)
        self.att = MultiHeadAttention(
            d_in=emb_dim,
            d_out=emb_dim,
            context_length=cfg["context_length"],
            dropout=rate,
            num_heads=cfg["n_heads"],
            qkv_bias=cfg.get("qkv_bias", False),
        )
        self.norm2 = LayerNorm(emb_dim)
        self.ff = FeedForward(cfg)
        self.drop_shortcut = nn.Dropout(p=rate)

    def _residual(self, x, norm, sublayer):
        return x + self.drop_shortcut(sublayer(norm(x)))

    def forward(self, x):
        for norm, sublayer in ((self.norm1, self.att), (self.norm2, self.ff)):
            x = self._residual(x, norm, sublayer)
        return x
