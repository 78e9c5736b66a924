"""a loop over a snapshot of _modules, the model returned too"""


def replace_linear_with_lora(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    for name, child in list(model._modules.items()):
        if type(child) is nn.Linear:
            model._modules[name] = LinearWithLoRA(child, rank, alpha)
        elif child is not None:
            replace_linear_with_lora(child, rank, alpha)
    return model
