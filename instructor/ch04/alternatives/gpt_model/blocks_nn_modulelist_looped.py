"""blocks in an nn.ModuleList looped over in forward; position table sliced by weight"""


class GPTModel(nn.Module):
    """GPT-2 whose blocks sit in a ModuleList (same state-dict keys as an nn.Sequential)."""

    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.ModuleList()
        for _ in range(cfg["n_layers"]):
            self.trf_blocks.append(TransformerBlock(cfg))
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        seq_len = in_idx.shape[-1]
        x = self.tok_emb(in_idx) + self.pos_emb.weight[:seq_len]
        x = self.drop_emb(x)
        for block in self.trf_blocks:
            x = block(x)
        return self.out_head(self.final_norm(x))
