"""walks the model part by part (embeddings, each block's layers, the final norm); groups by id, each tied tensor once"""


def _normal(tensor, std):
    with torch.no_grad():
        tensor.copy_(torch.randn(tensor.shape) * std)


def init_gpt2_weights(model):
    n_layers = len(model.trf_blocks)
    _normal(model.tok_emb.weight, 0.02)
    _normal(model.pos_emb.weight, 0.02)
    for block in model.trf_blocks:
        for linear in (block.att.W_query, block.att.W_key, block.att.W_value, block.ff.layers[0]):
            _normal(linear.weight, 0.02)
        for linear in (block.att.out_proj, block.ff.layers[2]):
            _normal(linear.weight, 0.02 * (2 * n_layers) ** -0.5)
        for linear in (
            block.att.W_query,
            block.att.W_key,
            block.att.W_value,
            block.att.out_proj,
            *block.ff.layers[::2],
        ):
            if linear.bias is not None:
                with torch.no_grad():
                    linear.bias.zero_()
        for norm in (block.norm1, block.norm2):
            with torch.no_grad():
                norm.scale.fill_(1.0)
                norm.shift.fill_(0.0)
    with torch.no_grad():
        model.final_norm.scale.fill_(1.0)
        model.final_norm.shift.fill_(0.0)
    if model.out_head.weight is not model.tok_emb.weight:
        _normal(model.out_head.weight, 0.02)


def configure_optimizers(model, weight_decay, learning_rate, betas=(0.9, 0.95), eps=1e-8, device_type="cpu"):
    seen, decay, no_decay = set(), [], []
    for _, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen or not param.requires_grad:
            continue
        seen.add(id(param))
        (decay if param.ndim >= 2 else no_decay).append(param)
    kwargs = {"fused": True} if device_type == "cuda" else {}
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate,
        betas=betas,
        eps=eps,
        **kwargs,
    )
