"""requires_grad_(False) on the model; the count over named_parameters as int"""


def count_trainable_parameters(model):
    return int(sum(p.numel() for _, p in model.named_parameters() if p.requires_grad))


def prepare_lora_model(model, rank, alpha):
    model.requires_grad_(False)
    replace_linear_with_lora(model, rank=rank, alpha=alpha)
    return model
