"""through an io.BytesIO buffer and pathlib"""

import io
from pathlib import Path


def save_checkpoint(model, optimizer, path):
    """Serialises to memory, then writes the bytes."""
    buffer = io.BytesIO()
    torch.save({"model_state_dict": model.state_dict(), "optimizer_state_dict": optimizer.state_dict()}, buffer)
    Path(path).write_bytes(buffer.getvalue())


def load_checkpoint(model, optimizer, path):
    """Reads the bytes, then deserialises from memory."""
    device = next(model.parameters()).device
    checkpoint = torch.load(io.BytesIO(Path(path).read_bytes()), map_location=device, weights_only=True)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
