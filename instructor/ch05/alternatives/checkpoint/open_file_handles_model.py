"""open file handles; the model restored by copying each tensor of its state dict"""


def save_checkpoint(model, optimizer, path):
    """The book's two state dicts, written through a file handle."""
    state = dict(model_state_dict=model.state_dict(), optimizer_state_dict=optimizer.state_dict())
    with open(path, "wb") as handle:
        torch.save(state, handle)


def load_checkpoint(model, optimizer, path):
    """State-dict tensors share storage with the model, so copying into them restores it."""
    with open(path, "rb") as handle:
        checkpoint = torch.load(handle, map_location="cpu", weights_only=True)
    saved = checkpoint["model_state_dict"]
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(saved[name])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
