""" "From scratch" enforcement: calls an exercise may not make while its checks run.

A check declares them with `@pytest.mark.forbid("torch.nn.functional.layer_norm", ...)`;
each dotted name is replaced for the duration of the check by a function that
raises `ForbiddenCall`, which the report shows as a failed check with a clear
message instead of a silent zero. Names a submission imported directly
(`from torch.nn.functional import layer_norm`) are replaced in its namespace too.
"""

from __future__ import annotations

import contextlib
import importlib

from .compare import CheckFailure

# Every spelling of softmax, log-softmax and log-sum-exp, for exercises that write their own.
SOFTMAX_FAMILY = (
    "torch.softmax",
    "torch.nn.functional.softmax",
    "torch.Tensor.softmax",
    "torch.special.softmax",
    "torch.log_softmax",
    "torch.nn.functional.log_softmax",
    "torch.Tensor.log_softmax",
    "torch.special.log_softmax",
    "torch.logsumexp",
    "torch.Tensor.logsumexp",
    "torch.special.logsumexp",
)


class ForbiddenCall(CheckFailure):
    """The student's code called something the exercise asks to write from scratch."""


def _owner_and_attribute(dotted: str):
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for name in parts[split:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise ValueError(f"cannot resolve {dotted!r}")


def _raiser(dotted: str):
    def forbidden(*args, **kwargs):
        raise ForbiddenCall(f"this exercise is written from scratch: your code called {dotted}, which it may not use")

    return forbidden


@contextlib.contextmanager
def forbid(dotted_names: list[str], namespaces: list[dict] = ()):
    """Make every named callable raise ForbiddenCall inside the block, also where `namespaces` bound it."""
    patched = []
    rebound = []
    try:
        for dotted in dotted_names:
            owner, attribute = _owner_and_attribute(dotted)
            original = getattr(owner, attribute)
            patched.append((owner, attribute, owner.__dict__.get(attribute, original)))
            raiser = _raiser(dotted)
            setattr(owner, attribute, raiser)
            for namespace in namespaces:
                for name, value in list(namespace.items()):
                    if value is original:
                        rebound.append((namespace, name, value))
                        namespace[name] = raiser
        yield
    finally:
        for namespace, name, value in reversed(rebound):
            namespace[name] = value
        for owner, attribute, original in reversed(patched):
            setattr(owner, attribute, original)
