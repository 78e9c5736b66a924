"""F.embedding on tok_emb.weight plus a slice of pos_emb.weight"""

import torch.nn.functional as F
from torch import nn


class InputEmbedding(nn.Module):
    """Token plus absolute position embeddings: (batch, n) ids -> (batch, n, emb_dim)."""

    def __init__(self, vocab_size, emb_dim, context_length):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, emb_dim)
        self.pos_emb = nn.Embedding(context_length, emb_dim)

    def forward(self, token_ids):
        num_tokens = token_ids.shape[-1]
        tokens = F.embedding(token_ids, self.tok_emb.weight)
        return tokens + self.pos_emb.weight[:num_tokens]
