"""saves the wrapper's state dict with the module./_orig_mod. prefixes stripped from its keys; pathlib rename"""


def _plain_keys(state_dict):
    plain = {}
    for key, value in state_dict.items():
        while key.startswith(("module.", "_orig_mod.")):
            key = key.split(".", 1)[1]
        plain[key] = value
    return plain


def save_checkpoint(path, model, optimizer, step, loader, rank=0):
    if rank != 0:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / (target.name + ".partial")
    torch.save(
        {
            "model": _plain_keys(model.state_dict()),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "loader": loader.state_dict(),
            "rng": [torch.get_rng_state(), np.random.get_state(), random.getstate()],
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        },
        partial,
    )
    partial.replace(target)


def load_checkpoint(path, model, optimizer, loader):
    saved = torch.load(path, weights_only=False)
    inner = model
    while hasattr(inner, "module") or hasattr(inner, "_orig_mod"):
        inner = inner.module if hasattr(inner, "module") else inner._orig_mod
    inner.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    loader.load_state_dict(saved["loader"])
    torch_state, numpy_state, python_state = saved["rng"]
    torch.set_rng_state(torch_state)
    np.random.set_state(numpy_state)
    random.setstate(python_state)
    if saved["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return saved["step"]
