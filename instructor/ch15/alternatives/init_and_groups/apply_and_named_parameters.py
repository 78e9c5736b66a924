"""model.apply for the defaults, then the residual projections found by name; groups built from a name -> parameter dict (nanoGPT)"""


def init_gpt2_weights(model):
    def base(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            torch.nn.init.zeros_(module.bias)
        if isinstance(module, LayerNorm):
            torch.nn.init.ones_(module.scale)
            torch.nn.init.zeros_(module.shift)

    model.apply(base)
    scaled_std = 0.02 / math.sqrt(2 * len(model.trf_blocks))
    for name, param in model.named_parameters():
        if name.endswith("att.out_proj.weight") or name.endswith("ff.layers.2.weight"):
            torch.nn.init.normal_(param, mean=0.0, std=scaled_std)


def configure_optimizers(model, weight_decay, learning_rate, betas=(0.9, 0.95), eps=1e-8, device_type="cpu"):
    param_dict = {pn: p for pn, p in model.named_parameters() if p.requires_grad}
    decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
    nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
    optim_groups = [
        {"params": decay_params, "weight_decay": weight_decay},
        {"params": nodecay_params, "weight_decay": 0.0},
    ]
    fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
    use_fused = fused_available and device_type == "cuda"
    return torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, eps=eps, fused=use_fused)
