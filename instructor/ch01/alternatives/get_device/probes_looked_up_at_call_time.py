"""a loop over (name, probe) pairs, looked up at call time"""


def get_device():
    candidates = [("cuda", lambda: torch.cuda.is_available()), ("mps", lambda: torch.backends.mps.is_available())]
    for name, probe in candidates:
        try:
            found = probe()
        except (RuntimeError, OSError, AssertionError, AttributeError):
            found = False
        if found:
            return torch.device(name)
    return torch.device("cpu")
