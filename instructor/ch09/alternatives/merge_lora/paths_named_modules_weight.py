"""paths from named_modules(); the weight from torch.addmm with B.T @ A.T; load_state_dict"""


def merge_lora(model: nn.Module) -> nn.Module:
    paths = [name for name, module in model.named_modules() if isinstance(module, LinearWithLoRA)]
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        wrapped = getattr(parent, child)
        old, lora = wrapped.linear, wrapped.lora
        new = nn.Linear(old.in_features, old.out_features, bias=old.bias is not None).to(old.weight)
        state = {"weight": torch.addmm(old.weight, lora.B.T, lora.A.T, alpha=lora.alpha).detach()}
        if old.bias is not None:
            state["bias"] = old.bias.detach()
        new.load_state_dict(state)
        setattr(parent, child, new)
    return model
