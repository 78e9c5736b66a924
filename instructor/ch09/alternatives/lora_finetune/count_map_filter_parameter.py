"""the count with map and filter; each parameter frozen with requires_grad_(False)"""


def count_trainable_parameters(model: nn.Module) -> int:
    return sum(map(torch.numel, filter(lambda param: param.requires_grad, model.parameters())))


def prepare_lora_model(model: nn.Module, rank: int, alpha: float) -> nn.Module:
    for _, param in model.named_parameters():
        param.requires_grad_(False)
    replace_linear_with_lora(model, rank, alpha)
    return model
