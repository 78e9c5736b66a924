"""cross_entropy with the classes on dim 1 (transpose(1, 2)); token-weighted mean over equal batches"""

import torch.nn.functional as F


def calc_loss_batch(input_batch, target_batch, model, device):
    """cross_entropy takes (batch, classes, positions) logits against (batch, positions) targets."""
    input_batch = input_batch.to(device)
    target_batch = target_batch.to(device)
    logits = model(input_batch)
    return F.cross_entropy(logits.transpose(1, 2), target_batch)


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Loss per token over the first num_batches batches (the batch mean when batches are equal)."""
    if len(data_loader) == 0:
        return float("nan")
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    total, tokens = 0.0, 0
    for index, (inputs, targets) in enumerate(data_loader):
        if index == limit:
            break
        total += calc_loss_batch(inputs, targets, model, device).item() * targets.numel()
        tokens += targets.numel()
    return total / tokens
