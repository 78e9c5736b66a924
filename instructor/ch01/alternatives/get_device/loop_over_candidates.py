"""A loop over (name, is_available) candidates in order of preference, each check wrapped in try/except."""


def get_device() -> torch.device:
    candidates = [
        ("cuda", lambda: torch.cuda.is_available()),
        ("mps", lambda: torch.backends.mps.is_available()),
    ]
    for name, is_available in candidates:
        try:
            if is_available():
                return torch.device(name)
        except Exception:
            continue
    return torch.device("cpu")
