"""nanoGPT's model.apply(_init_weights) for every module, then a second pass that re-draws the residual projections; groups partitioned by p.ndim over a de-duplicated id map"""

import torch
import torch.nn as nn


def init_gpt2_weights(model) -> None:
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)
        if isinstance(module, LayerNorm):
            torch.nn.init.ones_(module.scale)
            torch.nn.init.zeros_(module.shift)

    model.apply(_init)
    std = 0.02 * (2 * len(model.trf_blocks)) ** -0.5
    for block in model.trf_blocks:
        for proj in (block.att.out_proj, block.ff.layers[2]):
            torch.nn.init.normal_(proj.weight, mean=0.0, std=std)


def configure_optimizers(
    model, weight_decay: float, learning_rate: float, betas=(0.9, 0.95), eps: float = 1e-8, device_type: str = "cpu"
) -> torch.optim.AdamW:
    unique = {}
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if p.requires_grad:
                unique.setdefault(id(p), p)
    params = list(unique.values())
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, eps=eps, fused=device_type == "cuda")
