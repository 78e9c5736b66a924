"""the (token, expert) pairs sorted by expert and split into one contiguous chunk per expert (bincount sizes)"""

import torch
import torch.nn as nn


class MoEFeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.top_k = cfg["num_experts_per_tok"]
        self.gate = nn.Linear(cfg["emb_dim"], cfg["num_experts"], bias=False, dtype=cfg["dtype"])
        self.experts = nn.ModuleList([FeedForward(cfg) for _ in range(cfg["num_experts"])])

    def forward(self, x):
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])
        logits = self.gate(tokens)
        weights, indices = route(logits, self.top_k)
        order = indices.flatten().argsort(stable=True)
        token_of = order // self.top_k
        sizes = torch.bincount(indices.flatten(), minlength=len(self.experts)).tolist()
        gathered = tokens[token_of]
        pieces = []
        for expert, rows in zip(self.experts, gathered.split(sizes)):
            pieces.append(expert(rows) if rows.shape[0] else rows)
        results = torch.cat(pieces) * weights.flatten()[order].unsqueeze(-1).to(x.dtype)
        out = torch.zeros_like(tokens).index_add(0, token_of, results.to(x.dtype))
        return out.reshape(shape), logits
