"""A helper decorated with @torch.no_grad() scores each batch; counts kept as tensors and converted once at the end
with float(); len(labels) for the batch size."""


@torch.no_grad()
def _batch_correct(model, features, labels):
    return (model(features).argmax(dim=1) == labels).sum()


def compute_accuracy(model, dataloader):
    model.train(False)
    param = next(model.parameters())
    correct = torch.zeros((), dtype=torch.long)
    seen = 0
    for features, labels in dataloader:
        correct += _batch_correct(model, features.to(param.device), labels.to(param.device)).cpu()
        seen += len(labels)
    return float(correct) / seen
