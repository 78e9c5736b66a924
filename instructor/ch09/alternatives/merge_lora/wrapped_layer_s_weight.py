"""the wrapped layer's weight updated in place and the layer put back"""


def merge_lora(model):
    for name, module in model.named_children():
        if isinstance(module, LinearWithLoRA):
            with torch.no_grad():
                module.linear.weight += module.lora.alpha * (module.lora.A @ module.lora.B).T
            setattr(model, name, module.linear)
        else:
            merge_lora(module)
    return model
