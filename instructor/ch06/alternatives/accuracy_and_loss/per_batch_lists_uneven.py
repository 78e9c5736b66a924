"""batch losses and right counts kept in lists and summed at the end; accuracy weighted by each batch's size"""


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """accuracies of the batches weighted by their sizes."""
    model.eval()
    accuracies, sizes = [], []
    for i, (inputs, labels) in enumerate(data_loader):
        if num_batches is not None and i >= num_batches:
            break
        with torch.no_grad():
            predicted = model(inputs.to(device))[:, -1, :].argmax(dim=-1)
        accuracies.append((predicted == labels.to(device)).float().mean().item())
        sizes.append(len(labels))
    return sum(a * s for a, s in zip(accuracies, sizes)) / sum(sizes)


def calc_loss_batch(input_batch, target_batch, model, device):
    """cross-entropy of the last position."""
    logits = model(input_batch.to(device))
    return torch.nn.functional.cross_entropy(logits[:, -1], target_batch.to(device))


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """the batch losses in a list, averaged."""
    batch_losses = []
    for i, (inputs, labels) in enumerate(data_loader):
        if num_batches is not None and i >= num_batches:
            break
        batch_losses.append(calc_loss_batch(inputs, labels, model, device).item())
    return sum(batch_losses) / len(batch_losses) if batch_losses else float("nan")
