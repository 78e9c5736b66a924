"""requires_grad_ on modules, the head built with the model's dtype"""


def add_classification_head(model, num_classes=2):
    """freeze, new head, unfreeze the last block and the final norm."""
    model.requires_grad_(False)
    old = model.out_head
    model.out_head = nn.Linear(old.in_features, num_classes, dtype=old.weight.dtype)
    model.trf_blocks[len(model.trf_blocks) - 1].requires_grad_(True)
    model.final_norm.requires_grad_(True)
    return model
