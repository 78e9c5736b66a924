"""the two residual halves as methods; the tables sliced to the sequence before the blocks; functools.reduce"""

from functools import reduce


class TransformerBlock(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        emb_dim = cfg["emb_dim"]
        self.att = GroupedQueryAttention(emb_dim, emb_dim, cfg["n_heads"], cfg["n_kv_groups"], dtype=cfg["dtype"])
        self.ff = FeedForward(cfg)
        self.norm1, self.norm2 = RMSNorm(emb_dim), RMSNorm(emb_dim)

    def _attend(self, x, mask, cos, sin):
        return x + self.att(self.norm1(x), mask, cos, sin)

    def _feed_forward(self, x):
        return x + self.ff(self.norm2(x))

    def forward(self, x, mask, cos, sin):
        return self._feed_forward(self._attend(x, mask, cos, sin))


class Llama3Model(nn.Module):
    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"], dtype=cfg["dtype"])
        self.trf_blocks = nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            self.trf_blocks.append(TransformerBlock(cfg))
        self.final_norm = RMSNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False, dtype=cfg["dtype"])
        head_dim = cfg["emb_dim"] // cfg["n_heads"]
        tables = compute_rope_params(head_dim, cfg["rope_base"], cfg["context_length"], cfg["rope_freq"])
        for name, table in zip(("cos", "sin"), tables):
            self.register_buffer(name, table, persistent=False)

    def forward(self, in_idx):
        n = in_idx.shape[1]
        mask = torch.ones(n, n, device=in_idx.device).triu(1).bool()
        cos, sin = self.cos[:n], self.sin[:n]
        x = reduce(lambda h, block: block(h, mask, cos, sin), self.trf_blocks, self.tok_emb(in_idx))
        return self.out_head(self.final_norm(x))
