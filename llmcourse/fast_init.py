"""Build large modules fast when their weights are about to be overwritten."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn

# The initialisers nn.Linear, nn.Embedding and friends call in reset_parameters().
_INITIALISERS = (
    "uniform_",
    "normal_",
    "trunc_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "xavier_uniform_",
    "xavier_normal_",
    "constant_",
    "zeros_",
    "ones_",
)


@contextlib.contextmanager
def skipped_init() -> Iterator[None]:
    """Build modules without running torch.nn.init: parameters are allocated but never written,
    so the operating system backs them with no memory and a 124M-parameter model takes milliseconds."""
    saved = {name: getattr(nn.init, name) for name in _INITIALISERS}
    try:
        for name in _INITIALISERS:
            setattr(nn.init, name, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)
