"""unwraps with isinstance(DDP) / an _orig_mod test in a helper, stores the generator states as flat top-level keys under other names, and writes through tempfile.mkstemp in the target's folder"""

import os
import random
import tempfile

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP


def _unwrap(model):
    while True:
        if isinstance(model, DDP) or (hasattr(model, "module") and isinstance(model.module, torch.nn.Module)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), torch.nn.Module):
            model = model._orig_mod
        else:
            return model


def save_checkpoint(path, model, optimizer, step: int, loader, rank: int = 0) -> None:
    if rank:
        return
    state = {
        "model_state": _unwrap(model).state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "steps_done": int(step),
        "loader_state": loader.state_dict(),
        "torch_rng": torch.random.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ckpt-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_checkpoint(path, model, optimizer, loader) -> int:
    state = torch.load(path, weights_only=False, map_location="cpu")
    _unwrap(model).load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer_state"])
    loader.load_state_dict(state["loader_state"])
    torch.random.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    return state["steps_done"]
