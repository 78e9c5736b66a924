"""embedding tables collected from named_modules() and matched with `is`; model.parameters() (already free
of duplicates) filtered by requires_grad and split with two list comprehensions"""


def param_groups_for_weight_decay(model, weight_decay):
    tables = [m.weight for _, m in model.named_modules() if isinstance(m, nn.Embedding)]

    def decays(p):
        return p.ndim >= 2 and not any(p is t for t in tables)

    trainable = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in trainable if decays(p)], "weight_decay": weight_decay},
        {"params": [p for p in trainable if not decays(p)], "weight_decay": 0.0},
    ]
