"""one try block per backend"""


def get_device():
    try:
        if torch.cuda.is_available():
            return torch.device("cuda:0")
    except Exception:
        pass
    try:
        if torch.backends.mps.is_available():
            return torch.device("mps")
    except Exception:
        pass
    return torch.device("cpu")
