"""Behavioural checks for `nn.Module` exercises, shared by the chapters.

Modules are compared by loading the same parameters by name, so parameter
names and shapes are part of each exercise's contract, while buffers (a causal
mask, say) are the implementation's own business.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
from torch import nn

from autograder.compare import expect, expect_close, expect_list, expect_tensor, fail
from autograder.split import split


def parameter_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the module's parameters by name (no buffers): what the checks load into a submission."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def trained_parameter_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """`parameter_state` without the attention key biases, for comparing weights after AdamW steps.

    Softmax ignores a shift shared by a row of scores, and a key bias shifts each query's row by
    the same amount, so its exact gradient is zero. The computed one is rounding noise, which
    Adam divides by its own size into steps of about the learning rate: its value after training
    depends on the CPU's summation order, not on the code under test.
    """
    return {name: p for name, p in parameter_state(module).items() if not name.endswith("W_key.bias")}


def expect_parameter_names(module: nn.Module, expected: dict[str, torch.Tensor], what: str) -> None:
    """`module` has exactly the parameters named in `expected`, with the same shapes."""
    expect(isinstance(module, nn.Module), f"{what} should be an nn.Module; got {type(module).__name__}")
    have = dict(module.named_parameters())
    missing = [name for name in expected if name not in have]
    extra = [name for name in have if name not in expected]
    if missing:
        fail(f"{what} has no parameter named '{missing[0]}' (its parameters: {', '.join(have) or 'none'})")
    if extra:
        fail(f"{what} has an unexpected parameter '{extra[0]}' (expected: {', '.join(expected)})")
    for name, tensor in expected.items():
        if tuple(have[name].shape) != tuple(tensor.shape):
            fail(f"{what}.{name} has shape {tuple(have[name].shape)}; expected {tuple(tensor.shape)}")


def call_without_grad(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """`module(inputs)` without building a graph."""
    with torch.no_grad():
        return module(inputs)


def expect_recorded_outputs(module: nn.Module, case: dict, what: str, atol: float) -> None:
    """`module` gives, for each of a fixture's recorded "inputs", its recorded "outputs"."""
    for inputs, expected in zip(case["inputs"], case["outputs"]):
        shape = "x".join(map(str, inputs.shape))
        expect_close(call_without_grad(module, inputs), expected, f"{what} on a {shape} input", atol=atol)


def load_parameters(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Check the parameter names and shapes, then copy `state` into `module`; returns the module."""
    expect_parameter_names(module, state, what)
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(state[name])
    return module


def expect_causal(forward: Callable, inputs: torch.Tensor, redraw: Callable, what: str, atol: float = 1e-5) -> None:
    """The output at each position t is unchanged when only the inputs after t change.

    inputs: (batch, num_tokens, ...); `redraw(shape)` makes new inputs for the later positions.
    """
    with torch.no_grad():
        before = forward(inputs)
        for t in range(inputs.shape[1] - 1):
            changed = inputs.clone()
            changed[:, t + 1 :] = redraw(changed[:, t + 1 :].shape)
            after = forward(changed)
            diff = (after[:, : t + 1] - before[:, : t + 1]).abs().max().item()
            if not diff <= atol:
                fail(
                    f"{what} is not causal: its output at position {t} changed by {diff:.3g} when only the "
                    f"tokens after position {t} changed (mask the scores of later tokens before the softmax)"
                )


def expect_gradients_reach(module: nn.Module, output: torch.Tensor, what: str) -> None:
    """Backpropagating a random weighting of `output` gives every parameter a non-zero gradient."""
    expect_tensor(output, f"{what} output")
    expect(
        output.requires_grad,
        f"{what} output is cut off from the graph (no gradient can flow back): "
        "avoid .detach(), .data, torch.no_grad() and building new tensors from .tolist() in forward",
    )
    module.zero_grad(set_to_none=True)
    weighting = torch.randn(output.shape, generator=torch.Generator().manual_seed(7))
    (output * weighting).sum().backward()
    for name, param in module.named_parameters():
        if param.grad is None or not param.grad.abs().sum() > 0:
            fail(
                f"no gradient reaches {what}.{name}: is it used in forward, and is it an nn.Parameter that requires grad?"
            )


def expect_eval_deterministic(module: nn.Module, inputs: torch.Tensor, what: str) -> torch.Tensor:
    """In eval() two calls agree (dropout off); returns the output."""
    module.eval()
    with torch.no_grad():
        first, second = module(inputs), module(inputs)
    expect_close(second, first, f"{what} in eval() mode, called twice,", atol=0, rtol=0)
    return first


def expect_train_stochastic(module: nn.Module, inputs: torch.Tensor, what: str, seed: int = 0) -> torch.Tensor:
    """In train() with dropout > 0, two calls differ somewhere; returns the first output."""
    module.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        first, second = module(inputs), module(inputs)
    expect(
        not torch.equal(first, second),
        f"{what} in train() mode with dropout 0.5 gave the same output twice: is dropout applied (self.dropout)?",
    )
    return first


def randomised(module: nn.Module, *, seed: int | None = None, std: float = 0.5) -> nn.Module:
    """Random values in every parameter, so that norm weights at their ones (or shifts at zero) hide nothing.

    Drawn from torch's global generator, or from a generator of its own when `seed` is given
    (the same values whatever ran before: what recorded fixtures need).
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    with torch.no_grad():
        for param in module.parameters():
            if generator is None:
                param.normal_(0, std)
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * std)
    return module


class Randomised:
    """A reference class whose instances get random parameters, for `module_case`."""

    def __init__(self, cls):
        self.cls = cls

    def __call__(self, *args, **kwargs):
        return randomised(self.cls(*args, **kwargs))


def module_case(ref_cls, config: dict, inputs: torch.Tensor) -> dict:
    """The setup step of a module check: the configuration, the inputs, the reference's parameters
    (drawn by building `ref_cls(**config)`) and a random weighting of the output for the backward pass."""
    reference = ref_cls(**config).eval()
    with torch.no_grad():
        weighting = torch.randn(reference(inputs).shape)
    return {"config": config, "inputs": inputs, "state": parameter_state(reference), "weighting": weighting}


def module_outputs(sub_cls, case: dict, what: str) -> dict:
    """The produce step of a module check: `sub_cls(**config)` with the case's parameters, in eval();
    its output on the case's inputs and every parameter's gradient (None where none reaches it)."""
    mine = load_parameters(sub_cls(**case["config"]), case["state"], what).eval()
    mine.zero_grad(set_to_none=True)
    out = mine(case["inputs"])
    expect_tensor(out, f"{what} output")
    if out.requires_grad:
        (out * case["weighting"]).sum().backward()
    return {"out": out, "grads": {name: param.grad for name, param in mine.named_parameters()}}


def expect_module_outputs(outputs: dict, ref_cls, case: dict, what: str, atol: float = 1e-5) -> None:
    """The compare step of a module check: the submission's output and gradients (`module_outputs`)
    agree with the reference's, built with the same parameters, on the case's (hidden) inputs."""
    reference = load_parameters(ref_cls(**case["config"]), case["state"], what).eval()
    out = reference(case["inputs"])
    (out * case["weighting"]).sum().backward()
    expect_close(outputs["out"], out.detach(), f"{what} output on a hidden input", atol=atol)
    for name, param in reference.named_parameters():
        grad = outputs["grads"][name]
        if grad is None:
            fail(f"no gradient reaches {what}.{name} on a hidden input")
        expect_close(grad, param.grad, f"the gradient of {what}.{name} on a hidden input", atol=10 * atol)


def module_check(
    what: str, build: Callable, draw: Callable, doc: str, *, random_weights: bool = False, atol: float = 1e-5
) -> Callable:
    """A split check (`autograder.split`) of module `what`, the class `build(namespace)` gives
    (`operator.attrgetter("LayerNorm")`, or a builder of its own): `draw(rng)` returns the
    (config, inputs) pairs to try; each is built with the reference's parameters (random ones with
    `random_weights`), and outputs and gradients are compared (`module_case`, `module_outputs`,
    `expect_module_outputs`). `doc` is the check's name in reports."""

    def setup(ref, seed):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        ref_cls = Randomised(build(ref)) if random_weights else build(ref)
        return [module_case(ref_cls, config, inputs) for config, inputs in draw(rng)]

    def produce(sub, case):
        return [module_outputs(build(sub), one, what) for one in case]

    def compare(outputs, case, ref):
        expect_list(outputs, len(case), f"the {what} results")
        for got, one in zip(outputs, case):
            expect_module_outputs(got, build(ref), one, what, atol=atol)

    compare.__doc__ = doc
    return split(setup=setup, produce=produce)(compare)
