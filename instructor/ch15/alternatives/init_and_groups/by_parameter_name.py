"""initialises by walking named_parameters() and matching names (".scale", ".shift", ".bias", the two residual projections), and groups by name with a dict"""

import math

import torch


def init_gpt2_weights(model) -> None:
    n_layers = len(model.trf_blocks)
    residual_std = 0.02 / math.sqrt(2 * n_layers)
    with torch.no_grad():
        for name, p in model.named_parameters():  # the tied matrix comes once, as tok_emb.weight
            if name.endswith(("att.out_proj.weight", "ff.layers.2.weight")):
                p.normal_(0.0, residual_std)
            elif name.endswith(".scale"):
                p.fill_(1.0)
            elif name.endswith((".shift", ".bias")):
                p.zero_()
            else:  # the weights of nn.Linear and nn.Embedding
                p.normal_(0.0, 0.02)


def configure_optimizers(
    model, weight_decay: float, learning_rate: float, betas=(0.9, 0.95), eps: float = 1e-8, device_type: str = "cpu"
) -> torch.optim.AdamW:
    named = {name: p for name, p in model.named_parameters() if p.requires_grad}
    decay = [p for name, p in named.items() if p.dim() >= 2]
    no_decay = [p for name, p in named.items() if p.dim() < 2]
    kwargs = dict(lr=learning_rate, betas=betas, eps=eps)
    if device_type == "cuda":
        kwargs["fused"] = True
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], **kwargs
    )
