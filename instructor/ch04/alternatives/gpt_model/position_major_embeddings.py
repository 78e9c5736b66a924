"""embeddings summed position-major, (num_tokens, batch, emb_dim), dropped out, then transposed back: dropout draws its mask in another memory order than the reference, so a same-seed training step gives other logits"""


class GPTModel(nn.Module):
    """GPT-2 that builds its embeddings position by position, as time-major RNN code does."""

    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        positions = torch.arange(in_idx.shape[1], device=in_idx.device)
        # (num_tokens, batch, emb_dim): each position's embedding broadcast over the batch
        x = self.tok_emb(in_idx.T) + self.pos_emb(positions).unsqueeze(1)
        x = self.drop_emb(x).transpose(0, 1)
        x = self.trf_blocks(x)
        return self.out_head(self.final_norm(x))
