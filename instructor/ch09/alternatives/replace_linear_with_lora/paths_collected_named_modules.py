"""the paths collected from named_modules() first, each set on its parent"""


def replace_linear_with_lora(model, rank, alpha):
    paths = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    for path in paths:
        parent_path, _, child = path.rpartition(".")
        parent = model.get_submodule(parent_path)
        setattr(parent, child, LinearWithLoRA(getattr(parent, child), rank, alpha))
