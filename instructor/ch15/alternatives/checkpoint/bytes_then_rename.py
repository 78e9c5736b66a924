"""serialises into an io.BytesIO first, writes the bytes to `<path>.partial` with an fsync, then os.replace; unwraps with a getattr loop; RNG states nested by library"""

import io
import os
import random
from pathlib import Path

import numpy as np
import torch


def _bare(model):
    for _ in range(8):  # DDP(compile(model)), compile(DDP(model)), ...
        inner = getattr(model, "_orig_mod", None)
        if inner is None:
            inner = getattr(model, "module", None)
        if inner is None:
            break
        model = inner
    return model


def save_checkpoint(path, model, optimizer, step: int, loader, rank: int = 0) -> None:
    if rank != 0:
        return
    generators = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "random": random.getstate()}
    if torch.cuda.is_available():
        generators["cuda"] = torch.cuda.get_rng_state_all()
    buffer = io.BytesIO()
    torch.save(
        {
            "weights": _bare(model).state_dict(),
            "optim": optimizer.state_dict(),
            "step": step,
            "data": loader.state_dict(),
            "generators": generators,
        },
        buffer,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / (path.name + ".partial")
    with open(partial, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def load_checkpoint(path, model, optimizer, loader) -> int:
    ck = torch.load(path, weights_only=False)
    _bare(model).load_state_dict(ck["weights"])
    optimizer.load_state_dict(ck["optim"])
    loader.load_state_dict(ck["data"])
    gens = ck["generators"]
    torch.set_rng_state(gens["torch"])
    if "cuda" in gens and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(gens["cuda"])
    np.random.set_state(gens["numpy"])
    random.setstate(gens["random"])
    return int(ck["step"])
