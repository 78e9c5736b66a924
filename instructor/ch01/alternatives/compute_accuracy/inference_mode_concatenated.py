"""train(False) and inference_mode; all predictions concatenated, then one mean"""


@torch.inference_mode()
def compute_accuracy(model, dataloader):
    model.train(False)
    device = next(model.parameters()).device
    hits = [model(x.to(device)).argmax(-1).eq(y.to(device)) for x, y in dataloader]
    return torch.cat(hits).float().mean().item()
