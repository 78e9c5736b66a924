"""contextlib.suppress(Exception) around each check; mps looked up with getattr so an old torch without it is fine;
returns torch.device("cuda:0") for cuda."""

import contextlib


def get_device() -> torch.device:
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
    with contextlib.suppress(Exception):
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
    return torch.device("cpu")
