"""log-probabilities of the targets picked with a one-hot einsum; the loader stacks the losses"""


def calc_loss_batch(input_batch, target_batch, model, device):
    """-log p(target), averaged over every position of every sequence."""
    logits = model(input_batch.to(device))
    log_probs = torch.log_softmax(logits, dim=-1)
    one_hot = nn.functional.one_hot(target_batch.to(device), logits.shape[-1]).to(log_probs.dtype)
    return -torch.einsum("btv,btv->bt", log_probs, one_hot).mean()


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """The mean of the batch losses, nan for an empty loader."""
    if not len(data_loader):
        return float("nan")
    wanted = len(data_loader) if num_batches is None else min(len(data_loader), num_batches)
    losses = []
    for inputs, targets in data_loader:
        if len(losses) == wanted:
            break
        losses.append(calc_loss_batch(inputs, targets, model, device).detach())
    return torch.stack(losses).mean().item()
