"""All predictions and labels collected under torch.inference_mode() and concatenated; accuracy as the mean of the
matches over the concatenation; logits.max(dim=-1).indices for the class."""


def compute_accuracy(model, dataloader):
    model.eval()
    device = next(iter(model.parameters())).device
    predicted, targets = [], []
    with torch.inference_mode():
        for features, labels in dataloader:
            predicted.append(model(features.to(device)).max(dim=-1).indices.cpu())
            targets.append(labels.cpu())
    matches = torch.cat(predicted) == torch.cat(targets)
    return float(matches.float().mean())
