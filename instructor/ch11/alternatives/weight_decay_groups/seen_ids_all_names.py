"""walks named_parameters(remove_duplicate=False) and drops repeats itself with a set of ids; a parameter
goes to no_decay when ndim < 2 or it is an embedding weight (checked first)"""


def param_groups_for_weight_decay(model: nn.Module, weight_decay: float) -> list[dict]:
    no_decay_ids = set()
    for module in model.modules():
        if isinstance(module, nn.Embedding):
            no_decay_ids.add(id(module.weight))
    seen = set()
    decay, no_decay = [], []
    for _, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        if not p.requires_grad:
            continue
        if id(p) in no_decay_ids or p.ndim < 2:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups
