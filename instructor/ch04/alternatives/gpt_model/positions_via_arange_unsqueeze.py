"""positions via arange(...).unsqueeze(0), expanded over the batch; blocks passed as a generator"""


class GPTModel(nn.Module):
    """GPT-2 with the position ids made explicit per batch row."""

    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(num_embeddings=cfg["vocab_size"], embedding_dim=cfg["emb_dim"])
        self.pos_emb = nn.Embedding(num_embeddings=cfg["context_length"], embedding_dim=cfg["emb_dim"])
        self.drop_emb = nn.Dropout(p=cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*(TransformerBlock(cfg) for _ in range(cfg["n_layers"])))
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        pos_ids = torch.arange(in_idx.size(1), dtype=torch.long, device=in_idx.device).unsqueeze(0)
        pos_ids = pos_ids.expand_as(in_idx)
        hidden = self.drop_emb(self.tok_emb(in_idx) + self.pos_emb(pos_ids))
        hidden = self.trf_blocks(hidden)
        logits = self.out_head(self.final_norm(hidden))
        return logits
