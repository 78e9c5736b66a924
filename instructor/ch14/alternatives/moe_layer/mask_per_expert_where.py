"""a boolean (tokens, top_k) mask per expert; torch.where finds the rows, a weight per row, scatter-add back"""

import torch
import torch.nn as nn


class MoEFeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.num_experts = cfg["num_experts"]
        self.top_k = cfg["num_experts_per_tok"]
        self.gate = nn.Linear(cfg["emb_dim"], cfg["num_experts"], bias=False, dtype=cfg["dtype"])
        self.experts = nn.ModuleList()
        for _ in range(cfg["num_experts"]):
            self.experts.append(FeedForward(cfg))

    def forward(self, x):
        b, t, d = x.shape
        flat = x.view(b * t, d)
        router_logits = self.gate(flat)
        weights, selected = route(router_logits, self.top_k)
        result = flat.new_zeros(flat.shape)
        for e in range(self.num_experts):
            token_idx, slot = torch.where(selected == e)
            if len(token_idx) == 0:
                continue
            y = self.experts[e](flat[token_idx]) * weights[token_idx, slot, None]
            result = result.scatter_add(0, token_idx[:, None].expand(-1, d), y.to(flat.dtype))
        return result.view(b, t, d), router_logits
