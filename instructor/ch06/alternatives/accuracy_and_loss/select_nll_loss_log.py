"""select() and nll_loss of log_softmax; accuracy as a running tensor; islice over the loader"""

from itertools import islice


def _last_logits(model, input_batch):
    return model(input_batch).select(1, -1)


def calc_accuracy_loader(data_loader, model, device, num_batches=None):
    """examples right / examples seen."""
    was_training = model.training
    model.eval()
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    right, seen = torch.tensor(0), 0
    with torch.no_grad():
        for x, y in islice(data_loader, limit):
            right += (_last_logits(model, x.to(device)).argmax(-1) == y.to(device)).sum()
            seen += len(y)
    model.train(was_training)
    return right.item() / seen


def calc_loss_batch(input_batch, target_batch, model, device):
    """nll of log-softmax of the last token."""
    log_probs = torch.log_softmax(_last_logits(model, input_batch.to(device)), dim=-1)
    return torch.nn.functional.nll_loss(log_probs, target_batch.to(device))


def calc_loss_loader(data_loader, model, device, num_batches=None):
    """mean of the first batches."""
    if len(data_loader) == 0:
        return float("nan")
    limit = len(data_loader) if num_batches is None else min(num_batches, len(data_loader))
    losses = [calc_loss_batch(x, y, model, device).item() for x, y in islice(data_loader, limit)]
    return sum(losses) / len(losses)
