"""Keep PyTorch's compiler out of a checking process.

torch.optim imports `torch._dynamo`, about a second on a small CPU, the first time an
optimizer is built (its methods are marked not to be compiled, lazily) and at every step
(it puts graph breaks around it). Nothing in the course compiles. Before the checks run,
`skip_dynamo_import` marks those methods as already handled, and the optimizers the checks
hand to a submission are `compiler_free` ones, whose step does the same arithmetic without
the graph breaks: a chapter's checks then cost what they compute. A process that imports
`torch._dynamo` anyway (a submission that builds its own optimizer) is left as it is.
"""

from __future__ import annotations

import sys
from functools import cache


def _disabling_wrappers(namespace) -> list:
    """The functions in `namespace` (a class or module) that `_disable_dynamo` wrapped."""
    import torch._compile

    wrapper_code = torch._compile._disable_dynamo(lambda: None).__code__
    return [
        value
        for value in vars(namespace).values()
        if callable(value) and getattr(value, "__code__", None) is wrapper_code and hasattr(value, "__wrapped__")
    ]


def skip_dynamo_import() -> None:
    """Mark the optimizers' dynamo-disabled methods as handled, unless `torch._dynamo` is loaded already."""
    if "torch._dynamo" in sys.modules:
        return
    import torch.optim

    classes = [torch.optim.Optimizer, *torch.optim.Optimizer.__subclasses__()]
    for cls in classes:
        for wrapper in _disabling_wrappers(cls):
            original = wrapper.__wrapped__
            if getattr(original, "__dynamo_disable", None) is None:
                original.__dynamo_disable = original


@cache
def compiler_free(optimizer_class: type) -> type:
    """`optimizer_class` (torch.optim.AdamW, say) with a `step` that skips the graph breaks torch.optim
    puts around every step for the compiler (and the import of `torch._dynamo` they need): the same
    arithmetic, bit for bit, under `torch.no_grad()`. The checks train with these."""
    import torch

    compiled_step = optimizer_class.step
    # Once an instance of optimizer_class exists, Optimizer.__init__ has wrapped its step in a profiling
    # hook (marked `hooked`); the step with the graph breaks is the one under it.
    while getattr(compiled_step, "hooked", False):
        compiled_step = compiled_step.__wrapped__

    def step(self, closure=None):
        with torch.no_grad():
            return compiled_step.__wrapped__(self, closure)

    step.__doc__ = compiled_step.__doc__
    return type(optimizer_class.__name__, (optimizer_class,), {"step": step, "__module__": __name__})
