"""unwraps with isinstance(DDP) and getattr(_orig_mod); a NamedTemporaryFile in the same folder; RNG states under their own keys"""

import tempfile


def _raw(model):
    if isinstance(model, DDP):
        model = model.module
    return getattr(model, "_orig_mod", model)


def save_checkpoint(path, model, optimizer, step, loader, rank=0):
    if rank == 0:
        path = os.fspath(path)
        folder = os.path.dirname(path) or "."
        os.makedirs(folder, exist_ok=True)
        state = {
            "model_state": _raw(model).state_dict(),
            "optimizer_state": optimizer.state_dict(),
            "step": int(step),
            "loader_state": loader.state_dict(),
            "torch_rng": torch.random.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".partial", delete=False) as handle:
            torch.save(state, handle)
            tmp_name = handle.name
        os.replace(tmp_name, path)


def load_checkpoint(path, model, optimizer, loader):
    state = torch.load(path, map_location="cpu", weights_only=False)
    _raw(model).load_state_dict(state["model_state"])
    optimizer.load_state_dict(state["optimizer_state"])
    loader.load_state_dict(state["loader_state"])
    torch.random.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    np.random.set_state(state["numpy_rng"])
    random.setstate(state["python_rng"])
    return state["step"]
