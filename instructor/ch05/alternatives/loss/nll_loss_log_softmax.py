"""nll_loss of log_softmax; the loader averages a list over itertools.islice"""

import itertools

import torch.nn.functional as F


def calc_loss_batch(input_batch, target_batch, model, device):
    """Mean negative log-likelihood of the targets."""
    logits = model(input_batch.to(device))
    log_probs = F.log_softmax(logits, dim=-1)
    return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), target_batch.to(device).reshape(-1))


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """Mean batch loss over the first num_batches batches."""
    count = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    if count == 0:
        return float("nan")
    losses = [calc_loss_batch(x, y, model, device).item() for x, y in itertools.islice(data_loader, count)]
    return sum(losses) / len(losses)
