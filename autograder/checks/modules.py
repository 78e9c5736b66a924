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


def parameter_shapes(module: nn.Module, what: str) -> dict[str, list[int]]:
    """Produce: the shape of each of `module`'s parameters, by name (fails unless it is an nn.Module)."""
    expect(isinstance(module, nn.Module), f"{what} should be an nn.Module; got {type(module).__name__}")
    return {name: list(p.shape) for name, p in module.named_parameters()}


def expect_parameter_shapes(shapes: dict, expected: dict[str, torch.Tensor], what: str) -> None:
    """Compare: `shapes` (`parameter_shapes`) names exactly the parameters of `expected`, with their shapes."""
    expect(isinstance(shapes, dict), f"{what}: expected its parameter shapes by name")
    missing = [name for name in expected if name not in shapes]
    extra = [name for name in shapes if name not in expected]
    if missing:
        fail(f"{what} has no parameter named '{missing[0]}' (its parameters: {', '.join(map(str, shapes)) or 'none'})")
    if extra:
        fail(f"{what} has an unexpected parameter '{extra[0]}' (expected: {', '.join(expected)})")
    for name, tensor in expected.items():
        if list(shapes[name]) != list(tensor.shape):
            fail(f"{what}.{name} has shape {tuple(shapes[name])}; expected {tuple(tensor.shape)}")


def expect_parameter_names(module: nn.Module, expected: dict[str, torch.Tensor], what: str) -> None:
    """`module` has exactly the parameters named in `expected`, with the same shapes."""
    expect_parameter_shapes(parameter_shapes(module, what), expected, what)


def call_without_grad(module: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """`module(inputs)` without building a graph."""
    with torch.no_grad():
        return module(inputs)


def recorded_outputs(module: nn.Module, case: dict) -> list:
    """Produce: `module`'s output for each of a fixture's recorded "inputs"."""
    return [call_without_grad(module, inputs) for inputs in case["inputs"]]


def expect_recorded_outputs(outputs: list, case: dict, what: str, atol: float) -> None:
    """Compare: `outputs` (`recorded_outputs`) are the fixture's recorded "outputs"."""
    expect_list(outputs, len(case["inputs"]), f"the {what} outputs")
    for inputs, got, expected in zip(case["inputs"], outputs, case["outputs"], strict=True):
        shape = "x".join(map(str, inputs.shape))
        expect_close(got, expected, f"{what} on a {shape} input", atol=atol)


def load_parameters(module: nn.Module, state: dict[str, torch.Tensor], what: str) -> nn.Module:
    """Check the parameter names and shapes, then copy `state` into `module`; returns the module."""
    expect_parameter_names(module, state, what)
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(state[name])
    return module


def causal_probe(forward: Callable, inputs: torch.Tensor, redraw: Callable) -> dict:
    """Produce: `forward(inputs)`, and `forward` again for each t with the inputs after position t redrawn.

    inputs: (batch, num_tokens, ...); `redraw(shape)` makes new inputs for the later positions.
    Returns {"before": output, "after": [output with the inputs after t redrawn, for t < num_tokens - 1]}.
    """
    with torch.no_grad():
        before = forward(inputs)
        after = []
        for t in range(inputs.shape[1] - 1):
            changed = inputs.clone()
            changed[:, t + 1 :] = redraw(changed[:, t + 1 :].shape)
            after.append(forward(changed))
    return {"before": before, "after": after}


def expect_causal(probe: dict, num_tokens: int, what: str, atol: float = 1e-5) -> None:
    """Compare: in `probe` (`causal_probe` over `num_tokens` positions) the output at each position t
    is unchanged when only the inputs after t changed."""
    before = probe["before"]
    expect_tensor(before, f"{what} output")
    expect(before.dim() >= 2 and before.shape[1] == num_tokens, f"{what} should give one output per token")
    expect_list(probe["after"], num_tokens - 1, f"the {what} outputs")
    for t, after in enumerate(probe["after"]):
        expect_tensor(after, f"{what} output", shape=tuple(before.shape))
        diff = (after[:, : t + 1] - before[:, : t + 1]).abs().max().item()
        if not diff <= atol:
            fail(
                f"{what} is not causal: its output at position {t} changed by {diff:.3g} when only the "
                f"tokens after position {t} changed (mask the scores of later tokens before the softmax)"
            )


def gradient_probe(module: nn.Module, output: torch.Tensor, what: str) -> dict[str, float | None]:
    """Produce: backpropagate a random weighting of `output`; the absolute sum of each parameter's
    gradient, by name (None where no gradient reached it). Fails when `output` is cut off from the graph."""
    expect_tensor(output, f"{what} output")
    expect(
        output.requires_grad,
        f"{what} output is cut off from the graph (no gradient can flow back): "
        "avoid .detach(), .data, torch.no_grad() and building new tensors from .tolist() in forward",
    )
    module.zero_grad(set_to_none=True)
    weighting = torch.randn(output.shape, generator=torch.Generator().manual_seed(7))
    (output * weighting).sum().backward()
    return {
        name: None if param.grad is None else param.grad.abs().sum().item() for name, param in module.named_parameters()
    }


def expect_gradients_reach(probe: dict, names, what: str) -> None:
    """Compare: every parameter in `names` got a non-zero gradient in `probe` (`gradient_probe`)."""
    for name in names:
        got = probe.get(name) if isinstance(probe, dict) else None
        if not (isinstance(got, float) and got > 0):
            fail(
                f"no gradient reaches {what}.{name}: is it used in forward, and is it an nn.Parameter that requires grad?"
            )


def eval_twice(module: nn.Module, inputs: torch.Tensor) -> list:
    """Produce: two calls of `module` on `inputs` in eval() mode, without gradients."""
    module.eval()
    with torch.no_grad():
        return [module(inputs), module(inputs)]


def expect_eval_deterministic(calls: list, what: str) -> None:
    """Compare: the two eval() calls of `eval_twice` agree (dropout off)."""
    expect_list(calls, 2, f"the {what} outputs")
    expect_tensor(calls[0], f"{what} output")
    expect_close(calls[1], calls[0], f"{what} in eval() mode, called twice,", atol=0, rtol=0)


def train_twice(module: nn.Module, inputs: torch.Tensor, seed: int = 0) -> list:
    """Produce: two calls of `module` on `inputs` in train() mode, from torch seed `seed`, without gradients."""
    module.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        return [module(inputs), module(inputs)]


def expect_train_stochastic(calls: list, what: str) -> None:
    """Compare: with dropout > 0, the two train() calls of `train_twice` differ somewhere."""
    expect_list(calls, 2, f"the {what} outputs")
    expect_tensor(calls[0], f"{what} output")
    expect_tensor(calls[1], f"{what} output", shape=tuple(calls[0].shape))
    expect(
        not torch.equal(calls[0], calls[1]),
        f"{what} in train() mode with dropout 0.5 gave the same output twice: is dropout applied (self.dropout)?",
    )


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
