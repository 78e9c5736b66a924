"""Public checks of chapter 9: LoRA.

The LoRA layer is checked against its formula and, for its initialisation, against the
distribution Kaiming-uniform draws from (seed-free: the bound, the spread and the mean of a
thousand entries); the wrapped linear layer against the frozen layer plus the update, its
gradients included; the replacement and the merge on chapter 4's GPTModel and chapter 8's
Llama3Model, layer by layer, with parameter names, trainable counts and logits; the LoRA
classifier against chapter 6's classifier and a recorded run of AdamW steps.

Every check is split (`autograder.split`): its produce step runs the submission's code and
reports what it saw (outputs, parameter names and flags, types), and its compare step decides.
"""

from __future__ import annotations

import math
import numbers

import pytest
import torch
from torch import nn

from autograder.checks.llama_setups import SMALL_LLAMA
from autograder.checks.modules import (
    expect_gradients_reach,
    expect_parameter_shapes,
    gradient_probe,
    load_parameters,
    parameter_shapes,
    randomised,
)
from autograder.compare import (
    CheckFailure,
    expect,
    expect_close,
    expect_close_or_name_the_mistake,
    expect_list,
    expect_tensor,
    fail,
)
from autograder.no_dynamo import compiler_free
from autograder.split import as_data, split

lora_layer = pytest.mark.ch09_lora_layer
linear_with_lora = pytest.mark.ch09_linear_with_lora
replace_linear_with_lora = pytest.mark.ch09_replace_linear_with_lora
merge_lora = pytest.mark.ch09_merge_lora
lora_finetune = pytest.mark.ch09_lora_finetune

# Every size distinct, square and non-square layers, with and without bias (qkv_bias False).
TINY_GPT = {
    "vocab_size": 29,
    "context_length": 10,
    "emb_dim": 12,
    "n_heads": 3,
    "n_layers": 2,
    "drop_rate": 0.0,
    "qkv_bias": False,
}
# Sums of a few dozen products in another order (x @ (A @ B), F.linear, addmm) differ by ~1e-7.
ATOL = 1e-5
RANK, ALPHA = 3, 2.5  # alpha differs from 1, rank and alpha / rank: each misuse of the scaling shows
FINETUNE_STEPS, FINETUNE_LR = 4, 0.01


def gpt_model():
    from previous_chapters import GPTModel

    return GPTModel(dict(TINY_GPT))


def llama_model():
    from previous_chapters import Llama3Model

    return Llama3Model(dict(SMALL_LLAMA))


def tiny_classifier(make_model, seed: int) -> nn.Module:
    """A model made by chapter 6's add_classification_head (out_head, the last block and the final
    norm trainable), with random parameters, in eval mode."""
    from previous_chapters import add_classification_head

    return randomised(add_classification_head(make_model(), num_classes=2), seed=seed, std=0.3).eval()


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Linear)}


def lora_parameter_count(model: nn.Module, rank: int) -> int:
    """rank * (in_features + out_features) summed over the plain model's linear layers."""
    return sum(rank * (layer.in_features + layer.out_features) for layer in linear_layers(model).values())


def lora_names(linear_names) -> set[str]:
    return {f"{name}.lora.{factor}" for name in linear_names for factor in "AB"}


def wrap_linears(LinearWithLoRA, model: nn.Module, rank: int, alpha: float, names=None) -> nn.Module:
    """Every nn.Linear of `model` (or those in `names`) wrapped in LinearWithLoRA, walked by the check
    itself so that the merge is checked apart from replace_linear_with_lora; returns the model."""
    for name, layer in list(linear_layers(model).items()):
        if names is None or name in names:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, LinearWithLoRA(layer, rank, alpha))
    return model


def tokens(seed: int, shape=(2, 7), vocab_size: int = TINY_GPT["vocab_size"]) -> torch.Tensor:
    return torch.randint(0, vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def no_grad(module, *inputs):
    with torch.no_grad():
        return module(*inputs)


def _input(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _factors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Trained-looking factors of a LoRALayer(10, 6, RANK, ...): A (10, RANK) drawn from `seed`, B (RANK, 6)
    from `seed + 1`."""
    return _input((10, RANK), seed) * 0.5, _input((RANK, 6), seed + 1) * 0.5


def _observed(value):
    """An attribute of the submission's objects, as data: itself where it is data (a number, a tensor,
    text, None), else its text."""
    try:
        return as_data(value)
    except CheckFailure:
        return str(value)


def _equals_number(value, expected: float) -> bool:
    """Whether an `_observed` value equals the number `expected` (a number, or a tensor of one element)."""
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and value.item() == expected
    return isinstance(value, (int, float)) and value == expected


def _is_plain_linear(sub, module) -> bool:
    return isinstance(module, nn.Linear) and not isinstance(module, sub.LinearWithLoRA)


# ---------------------------------------------------------------- ch09.lora_layer

LAYER = f"LoRALayer(10, 6, {RANK}, {ALPHA})"


def _lora_layer_layout(sub):
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    return {"shapes": parameter_shapes(layer, LAYER), "alpha": _observed(getattr(layer, "alpha", "missing"))}


@lora_layer
@split(produce=_lora_layer_layout)
def test_lora_layer_parameters(outputs):
    expect_parameter_shapes(outputs["shapes"], {"A": torch.empty(10, RANK), "B": torch.empty(RANK, 6)}, LAYER)
    expect(
        _equals_number(outputs["alpha"], ALPHA),
        f"{LAYER}.alpha is {outputs['alpha']}; keep the scaling as self.alpha",
    )


def _fresh_lora_layer(sub):
    """A fresh LoRALayer(10, 6, ...)'s B and its output on a (2, 4, 10) input."""
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    return {"B": layer.B, "out": no_grad(layer, torch.randn(2, 4, 10))}


@lora_layer
@split(produce=_fresh_lora_layer)
def test_lora_update_is_zero_at_initialisation(outputs):
    B = outputs["B"]
    expect(
        isinstance(B, torch.Tensor) and bool((B == 0).all()),
        "LoRALayer's B should start at zeros, so that the update starts at exactly zero "
        "and the adapted model starts as the pretrained one",
    )
    out = outputs["out"]
    expect_tensor(out, "LoRALayer(10, 6, ...) output on a (2, 4, 10) input", shape=(2, 4, 6))
    expect(bool((out == 0).all()), "a fresh LoRALayer's output should be exactly zero (B starts at zeros)")


def _fresh_a(sub, in_dim, rank):
    return sub.LoRALayer(in_dim, 5, rank, ALPHA).A


@lora_layer
@split(produce=_fresh_a)
@pytest.mark.parametrize("in_dim, rank", [(48, 25), (400, 4)])
def test_a_is_kaiming_uniform_over_its_fan_in(outputs, in_dim, rank):
    what = f"A of LoRALayer({in_dim}, 5, {rank}, ...)"
    expect_tensor(outputs, what)
    A = outputs.double().flatten()
    bound = 1 / math.sqrt(rank)
    largest, spread = A.abs().max().item(), A.std().item()
    expect(
        largest > 0,
        f"{what} is all zeros: with A and B both zero neither ever gets a gradient; draw A with "
        "Kaiming-uniform and start B at zeros",
    )
    expect(
        abs(A.mean().item()) < 0.2 * spread,
        f"{what} has mean {A.mean().item():.3g}: Kaiming-uniform draws from U(-b, b), centred at zero",
    )
    # Uniform entries reach sqrt(3) standard deviations; a thousand normal ones reach more than 3.
    expect(
        largest < 2.2 * spread,
        f"{what} looks normally distributed (its largest entry is {largest / spread:.1f} "
        "standard deviations out): Kaiming-uniform draws from a uniform distribution U(-b, b)",
    )
    if not 0.95 * bound <= largest <= bound * (1 + 1e-6):
        for mistake, wrong in (
            (
                f"reads the fan-in from in_dim (bound 1/sqrt({in_dim})): PyTorch's fan-in of a 2-d "
                f"tensor is its size(1), the rank for A of shape (in_dim, rank)",
                1 / math.sqrt(in_dim),
            ),
            (
                "is Kaiming-uniform without a=sqrt(5) (bound sqrt(6 / fan_in)): nn.Linear's "
                "initialisation passes a=math.sqrt(5)",
                math.sqrt(6 / rank),
            ),
        ):
            if 0.95 * wrong <= largest <= wrong * (1 + 1e-6):
                fail(f"{what} {mistake}")
        fail(
            f"{what} reaches {largest:.3g}; Kaiming-uniform with a=sqrt(5) on an (in_dim, rank) tensor draws from "
            f"U(-1/sqrt(rank), 1/sqrt(rank)), here ±{bound:.3g}"
        )


FORMULA_SHAPES = ((5, 10), (2, 3, 10), (1, 2, 3, 10))


def _lora_layer_with_factors(sub, seed: int, what: str) -> nn.Module:
    """LoRALayer(10, 6, RANK, ALPHA) holding `_factors(seed)`."""
    A, B = _factors(seed)
    return load_parameters(sub.LoRALayer(10, 6, RANK, ALPHA), {"A": A, "B": B}, what)


def _formula_outputs(sub):
    """The LoRALayer's output on each input of FORMULA_SHAPES."""
    layer = _lora_layer_with_factors(sub, 1, LAYER)
    return [no_grad(layer, _input(shape, len(shape))) for shape in FORMULA_SHAPES]


@lora_layer
@split(produce=_formula_outputs)
def test_lora_layer_computes_alpha_x_a_b(outputs):
    expect_list(outputs, len(FORMULA_SHAPES), "the LoRALayer outputs")
    A, B = _factors(1)
    for shape, actual in zip(FORMULA_SHAPES, outputs, strict=True):
        x = _input(shape, len(shape))
        what = f"LoRALayer(10, 6, {RANK}, alpha={ALPHA}) output on a {shape} input"
        expect_tensor(actual, what, shape=(*shape[:-1], 6))
        mistakes = (
            (
                "scales by alpha / rank (Hugging Face PEFT's convention): here alpha multiplies the update as it is",
                ALPHA / RANK * (x @ A @ B),
            ),
            ("never multiplies by alpha", x @ A @ B),
        )
        expect_close_or_name_the_mistake(
            actual, ALPHA * (x @ A @ B), f"{what} (alpha * x @ A @ B)", "LoRALayer", mistakes, atol=ATOL
        )


def _lora_layer_gradients(sub):
    layer = _lora_layer_with_factors(sub, 3, "LoRALayer")
    return gradient_probe(layer, layer(torch.randn(3, 10)), "LoRALayer")


@lora_layer
@split(produce=_lora_layer_gradients)
def test_lora_gradients_reach_a_and_b(outputs):
    expect_gradients_reach(outputs, ("A", "B"), "LoRALayer")


# ---------------------------------------------------------------- ch09.linear_with_lora


def _pretrained(bias: bool, seed: int) -> nn.Linear:
    """The pretrained layer of the LinearWithLoRA checks: nn.Linear(10, 6), drawn after torch.manual_seed(seed)."""
    torch.manual_seed(seed)
    return nn.Linear(10, 6, bias=bias)


def _wrapped(sub, bias: bool = True, seed: int = 0) -> nn.Module:
    """LinearWithLoRA around a frozen copy of `_pretrained(bias, seed)`: frozen first, as the chapter's
    (and the book's) model-level sequence does before it wraps any layer."""
    linear = _pretrained(bias, seed)
    copy = nn.Linear(10, 6, bias=bias)
    copy.load_state_dict(linear.state_dict())
    for param in copy.parameters():
        param.requires_grad = False
    return sub.LinearWithLoRA(copy, RANK, ALPHA)


def _wrapped_with_factors(sub, seed: int, factor_seed: int) -> nn.Module:
    """`_wrapped(sub, seed=seed)` with the factors `_factors(factor_seed)`: B no longer zero, as after training."""
    wrapped = _wrapped(sub, seed=seed)
    A, B = _factors(factor_seed)
    with torch.no_grad():
        wrapped.lora.A.copy_(A)
        wrapped.lora.B.copy_(B)
    return wrapped


def _wrapped_name(bias: bool) -> str:
    return f"LinearWithLoRA(nn.Linear(10, 6, bias={bias}), {RANK}, {ALPHA})"


def _wrapped_layout(sub, bias):
    wrapped = _wrapped(sub, bias)
    lora = getattr(wrapped, "lora", None)
    return {
        "shapes": parameter_shapes(wrapped, _wrapped_name(bias)),
        "lora_type": type(lora).__name__,
        "lora_is_lora_layer": isinstance(lora, sub.LoRALayer),
        "alpha": _observed(getattr(lora, "alpha", "missing")),
    }


@linear_with_lora
@split(produce=_wrapped_layout)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_with_lora_parameters(outputs, bias):
    expected = {"linear.weight": torch.empty(6, 10), "lora.A": torch.empty(10, RANK), "lora.B": torch.empty(RANK, 6)}
    if bias:
        expected["linear.bias"] = torch.empty(6)
    expect_parameter_shapes(outputs["shapes"], expected, _wrapped_name(bias))
    expect(
        outputs["lora_is_lora_layer"] is True,
        f"LinearWithLoRA.lora should be a LoRALayer; got {outputs['lora_type']}",
    )
    expect(
        _equals_number(outputs["alpha"], ALPHA),
        f"LinearWithLoRA(linear, {RANK}, {ALPHA}).lora.alpha is {outputs['alpha']}: pass alpha on to the LoRALayer",
    )


def _wrapped_flags(sub):
    """The trainable parameters of a LinearWithLoRA around a frozen layer."""
    return [name for name, param in _wrapped(sub).named_parameters() if param.requires_grad]


@linear_with_lora
@split(produce=_wrapped_flags)
def test_only_a_and_b_are_trainable(outputs):
    trainable = set(outputs)
    unfrozen = sorted(trainable & {"linear.weight", "linear.bias"})
    expect(
        not unfrozen,
        f"LinearWithLoRA makes the frozen layer's {' and '.join(unfrozen)} trainable again: the caller froze "
        "the model before wrapping it; leave the wrapped layer's requires_grad as it is (or set it to False)",
    )
    expect(
        trainable == {"lora.A", "lora.B"},
        f"LinearWithLoRA's trainable parameters are {sorted(trainable)}; expected lora.A and lora.B",
    )


START_INPUT = ((2, 3, 10), 25)  # (shape, seed) of `_input`


def _fresh_wrapped_outputs(sub, bias):
    """A fresh LinearWithLoRA's wrapped weight and its output on the START_INPUT."""
    wrapped = _wrapped(sub, bias, seed=5)
    return {"weight": wrapped.linear.weight, "out": no_grad(wrapped, _input(*START_INPUT))}


@linear_with_lora
@split(produce=_fresh_wrapped_outputs)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_with_lora_starts_as_the_linear_layer(outputs, bias):
    linear = _pretrained(bias, seed=5)
    expect_close(
        outputs["weight"],
        linear.weight,
        "LinearWithLoRA.linear.weight (the wrapped layer's own weight)",
        atol=0,
    )
    expect_close(
        outputs["out"],
        no_grad(linear, _input(*START_INPUT)),
        f"a fresh LinearWithLoRA's output (bias={bias}) next to the wrapped layer's",
        atol=ATOL,
    )


UPDATE_INPUT = ((4, 2, 10), 26)


def _trained_wrapped_output(sub):
    return no_grad(_wrapped_with_factors(sub, seed=6, factor_seed=7), _input(*UPDATE_INPUT))


@linear_with_lora
@split(produce=_trained_wrapped_output)
def test_linear_with_lora_adds_the_update(outputs):
    A, B = _factors(7)
    x = _input(*UPDATE_INPUT)
    plain = no_grad(_pretrained(True, seed=6), x)
    expect_tensor(outputs, "LinearWithLoRA output on a (4, 2, 10) input", shape=(4, 2, 6))
    mistakes = (
        ("returns the LoRA update alone: add the wrapped layer's output", ALPHA * (x @ A @ B)),
        ("ignores the LoRA update", plain),
    )
    expect_close_or_name_the_mistake(
        outputs,
        plain + ALPHA * (x @ A @ B),
        "LinearWithLoRA output with a non-zero B (linear(x) + alpha * x @ A @ B)",
        "LinearWithLoRA",
        mistakes,
        atol=ATOL,
    )


GRADIENT_INPUT = ((3, 10), 27)
WRAPPED_PARAMETERS = ("linear.weight", "linear.bias", "lora.A", "lora.B")


def _output_weighting() -> torch.Tensor:
    """(3, 6): the weighting of the LinearWithLoRA output whose sum is backpropagated."""
    return torch.randn(3, 6, generator=torch.Generator().manual_seed(10))


def _wrapped_gradients(sub):
    """The gradient of each of WRAPPED_PARAMETERS (None where none reached it) after a backward pass."""
    wrapped = _wrapped_with_factors(sub, seed=8, factor_seed=9)
    (wrapped(_input(*GRADIENT_INPUT)) * _output_weighting()).sum().backward()
    return {name: wrapped.get_parameter(name).grad for name in WRAPPED_PARAMETERS}


@linear_with_lora
@split(produce=_wrapped_gradients)
def test_gradients_reach_only_a_and_b(outputs):
    for name in ("linear.weight", "linear.bias"):
        grad = outputs[name]
        expect(grad is None or not grad.any(), f"a gradient reaches LinearWithLoRA.{name}: the wrapped layer is frozen")
    A_leaf, B_leaf = (factor.requires_grad_() for factor in _factors(9))
    x = _input(*GRADIENT_INPUT)
    ((no_grad(_pretrained(True, seed=8), x) + ALPHA * (x @ A_leaf @ B_leaf)) * _output_weighting()).sum().backward()
    for name, expected in (("lora.A", A_leaf.grad), ("lora.B", B_leaf.grad)):
        grad = outputs[name]
        expect(grad is not None, f"no gradient reaches LinearWithLoRA.{name}")
        expect_close(grad, expected, f"the gradient of LinearWithLoRA.{name}", atol=ATOL)


# ---------------------------------------------------------------- ch09.replace_linear_with_lora

MODELS = {"GPTModel": gpt_model, "Llama3Model": llama_model}
SHARED_VOCAB = min(TINY_GPT["vocab_size"], SMALL_LLAMA["vocab_size"])  # token ids both models take


def _wrapping(sub, model: nn.Module, paths) -> dict:
    """What replace_linear_with_lora left at each of `paths` (where `model`'s linear layers were): the
    module's type and, for a LinearWithLoRA, its wrapped layer's type and, where that is a plain nn.Linear,
    its weight and bias and the shape of A and alpha of its LoRA layer; and every LinearWithLoRA's path."""
    layers = {}
    for path in paths:
        module = model.get_submodule(path)
        seen = {"type": type(module).__name__, "is_wrapper": isinstance(module, sub.LinearWithLoRA)}
        if seen["is_wrapper"]:
            inner = module.linear
            seen |= {"inner_type": type(inner).__name__, "inner_is_plain": _is_plain_linear(sub, inner)}
            if seen["inner_is_plain"]:
                seen |= {
                    "weight": inner.weight,
                    "bias": inner.bias,
                    "A_shape": list(module.lora.A.shape),
                    "alpha": _observed(module.lora.alpha),
                }
        layers[path] = seen
    wrappers = [name for name, module in model.named_modules() if isinstance(module, sub.LinearWithLoRA)]
    return {"layers": layers, "wrappers": wrappers}


def _same_tensor(value, expected: torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and torch.equal(value, expected)


def expect_linears_wrapped(wrapping: dict, originals: dict[str, tuple], rank: int, alpha: float, what: str):
    """In `wrapping` (`_wrapping`), each nn.Linear that was at a path of `originals` ({path: (weight, bias)})
    is now a LinearWithLoRA around a plain nn.Linear with the same weights, and no other module is one."""
    layers = wrapping["layers"]
    for path, (weight, bias) in originals.items():
        seen = layers[path]
        if seen["is_wrapper"] is not True:
            fail(
                f"{what}.{path} is a {seen['type']} after replace_linear_with_lora, not a LinearWithLoRA: "
                "replace each nn.Linear child and recurse into every other child, at any depth"
            )
        expect(
            seen["inner_is_plain"] is True,
            f"{what}.{path}.linear is a {seen['inner_type']}: the wrapped layer should be the original nn.Linear "
            "(was a LinearWithLoRA walked into and wrapped again?)",
        )
        expect(
            _same_tensor(seen["weight"], weight) and (bias is None or _same_tensor(seen["bias"], bias)),
            f"{what}.{path}.linear no longer holds the original layer's weight and bias",
        )
        expect(
            seen["A_shape"] == [weight.shape[1], rank] and _equals_number(seen["alpha"], alpha),
            f"{what}.{path}.lora should have rank {rank} and alpha {alpha}: pass them on",
        )
    extra = [name for name in wrapping["wrappers"] if name not in originals]
    expect(not extra, f"{what}.{extra[0] if extra else ''} is a LinearWithLoRA where there was no nn.Linear")


def _originals(model: nn.Module) -> dict[str, tuple]:
    return {
        name: (layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone())
        for name, layer in linear_layers(model).items()
    }


def _random_model(name: str, seed: int) -> nn.Module:
    return randomised(MODELS[name](), seed=seed, std=0.3)


def _replaced_wrapping(sub, name):
    model = _random_model(name, seed=11)
    paths = list(linear_layers(model))
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    return _wrapping(sub, model, paths)


@replace_linear_with_lora
@split(produce=_replaced_wrapping)
@pytest.mark.parametrize("name", MODELS)
def test_every_linear_layer_is_wrapped(outputs, name):
    expect_linears_wrapped(outputs, _originals(_random_model(name, seed=11)), RANK, ALPHA, name)


def _replaced_logits(sub, name):
    model = _random_model(name, seed=12).eval()
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    return no_grad(model, tokens(13, vocab_size=SHARED_VOCAB))


@replace_linear_with_lora
@split(produce=_replaced_logits)
@pytest.mark.parametrize("name", MODELS)
def test_replacement_keeps_the_outputs(outputs, name):
    before = no_grad(_random_model(name, seed=12).eval(), tokens(13, vocab_size=SHARED_VOCAB))
    expect_close(outputs, before, f"{name} logits after replace_linear_with_lora (B starts at zeros)", atol=ATOL)


def adapted_parameter_names(model: nn.Module) -> set[str]:
    """The parameter names `model` has once each of its linear layers is wrapped: the book's
    `linear` and `lora` attributes, and `A` and `B` in the LoRA layer."""
    linears = linear_layers(model)
    names = set()
    for name, _ in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        names.add(f"{owner}.linear.{leaf}" if owner in linears else name)
    return names | lora_names(linears)


def _frozen_replaced_parameters(sub, name):
    """The parameter names, the trainable ones and their count after replace_linear_with_lora on a frozen model."""
    model = MODELS[name]()
    for param in model.parameters():
        param.requires_grad = False
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    return {
        "names": [n for n, _ in model.named_parameters()],
        "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
        "count": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


@replace_linear_with_lora
@split(produce=_frozen_replaced_parameters)
@pytest.mark.parametrize("name", MODELS)
def test_replacement_names_and_trainable_count(outputs, recorded, name):
    model = MODELS[name]()
    linears = linear_layers(model)
    expected_names, expected_count = adapted_parameter_names(model), lora_parameter_count(model, RANK)
    names = set(outputs["names"])
    missing, extra = sorted(expected_names - names), sorted(names - expected_names)
    expect(not missing, f"{name} after replace_linear_with_lora has no parameter {missing[0] if missing else ''}")
    expect(not extra, f"{name} after replace_linear_with_lora has an unexpected parameter {extra[0] if extra else ''}")
    trainable = set(outputs["trainable"])
    frozen_lora, trained_other = sorted(lora_names(linears) - trainable), sorted(trainable - lora_names(linears))
    expect(not frozen_lora, f"{frozen_lora[0] if frozen_lora else ''} does not train after replace_linear_with_lora")
    expect(
        not trained_other,
        f"{trained_other[0] if trained_other else ''} of the frozen {name} trains after "
        "replace_linear_with_lora: only the LoRA factors should",
    )
    count = outputs["count"]
    expect(
        count == expected_count == recorded["replace"][name],
        f"{name} (frozen) has {count:,} trainable parameters after replace_linear_with_lora with rank {RANK}; "
        f"expected {expected_count:,}: rank * (in_features + out_features) for each of its {len(linears)} linear layers",
    )


def _gpt_with_frozen_embedding() -> nn.Module:
    model = gpt_model()
    model.tok_emb.weight.requires_grad = False
    return model


def _replaced_flags(sub):
    """requires_grad of each parameter after replace_linear_with_lora on a GPTModel with a frozen tok_emb."""
    model = _gpt_with_frozen_embedding()
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    return {n: p.requires_grad for n, p in model.named_parameters()}


@replace_linear_with_lora
@split(produce=_replaced_flags)
def test_replacement_leaves_the_other_parameters_alone(outputs):
    model = _gpt_with_frozen_embedding()
    flags = {
        n: p.requires_grad for n, p in model.named_parameters() if n.rpartition(".")[0] not in linear_layers(model)
    }
    for name, flag in flags.items():
        expect(
            outputs[name] is flag,
            f"replace_linear_with_lora changed requires_grad of {name}: it only "
            "replaces the linear layers (prepare_lora_model does the freezing)",
        )


# ---------------------------------------------------------------- ch09.merge_lora


def _adapted(sub, make_model, seed: int, names=None) -> nn.Module:
    """A model with LinearWithLoRA layers (every linear one, or those in `names`), every parameter
    random: B no longer zero, as after training."""
    model = wrap_linears(sub.LinearWithLoRA, make_model(), RANK, ALPHA, names)
    return randomised(model, seed=seed, std=0.3).eval()


def _copy(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A copy of `tensor` as it is now (a merge in place may change it before the outputs are taken)."""
    return None if tensor is None else tensor.detach().clone()


def _adapters(model: nn.Module, paths) -> dict:
    """{path: copies of the wrapped layer's weight and bias and of the LoRA layer's A and B, and its alpha}
    of the LinearWithLoRA at each of `paths`."""
    adapters = {}
    for path in paths:
        module = model.get_submodule(path)
        adapters[path] = {
            "weight": _copy(module.linear.weight),
            "bias": _copy(module.linear.bias),
            "A": _copy(module.lora.A),
            "B": _copy(module.lora.B),
            "alpha": _observed(module.lora.alpha),
        }
    return adapters


def _expected_merge(adapter: dict) -> tuple:
    """(weight + alpha * (A @ B).T, bias, [(mistake, the weight it gives)]) for one of `_adapters`."""
    weight, alpha = adapter["weight"], adapter["alpha"]
    update = adapter["A"] @ adapter["B"]
    mistakes = [
        ("adds (A @ B).T without alpha", weight + update.T),
        ("scales by alpha / rank: alpha multiplies the update as it is", weight + alpha / RANK * update.T),
    ]
    if update.shape[0] == update.shape[1]:
        mistakes.append(
            ("adds A @ B untransposed: nn.Linear's weight is (out_features, in_features)", weight + alpha * update)
        )
    return weight + alpha * update.T, adapter["bias"], mistakes


def _merge(sub, model: nn.Module) -> dict:
    """Produce: merge_lora(model); whether it returned `model` (merged in place), and the type it returned."""
    merged = sub.merge_lora(model)
    return {"returns_the_model": merged is model, "returned": type(merged).__name__}


def _expect_merged_in_place(merge: dict, what: str) -> None:
    """Compare: `merge` (`_merge`) says that merge_lora returned the model it was given."""
    expect(
        merge["returns_the_model"] is True,
        f"merge_lora({what}) should change the model in place and return it; got {merge['returned']}",
    )


def _merged_layer(sub, module) -> dict:
    """The type of a module after merge_lora and, where it is a plain nn.Linear, its weight and bias."""
    seen = {"type": type(module).__name__, "is_plain_linear": _is_plain_linear(sub, module)}
    if seen["is_plain_linear"]:
        seen |= {"weight": module.weight, "bias": module.bias}
    return seen


def _merged_layers(sub, name):
    """Each LinearWithLoRA's layers and factors before merge_lora, and what is at its path after."""
    model = _adapted(sub, MODELS[name], seed=14)
    paths = list(linear_layers(MODELS[name]()))
    adapters = _adapters(model, paths)
    merge = _merge(sub, model)
    return {
        "adapters": adapters,
        "merge": merge,
        "merged": {path: _merged_layer(sub, model.get_submodule(path)) for path in paths},
    }


@merge_lora
@split(produce=_merged_layers)
@pytest.mark.parametrize("name", MODELS)
def test_merged_layers_hold_the_merged_weights(outputs, name):
    _expect_merged_in_place(outputs["merge"], name)
    for path in linear_layers(MODELS[name]()):
        weight, bias, mistakes = _expected_merge(outputs["adapters"][path])
        layer = outputs["merged"][path]
        expect(
            layer["is_plain_linear"] is True,
            f"{name}.{path} is a {layer['type']} after merge_lora; it should be a plain nn.Linear",
        )
        expect_tensor(
            layer["weight"], f"{name}.{path}.weight after merge_lora", shape=tuple(weight.shape), dtype=weight.dtype
        )
        expect_close_or_name_the_mistake(
            layer["weight"],
            weight,
            f"{name}.{path}.weight after merge_lora (weight + alpha * (A @ B).T)",
            f"merge_lora at {path}",
            mistakes,
            atol=ATOL,
        )
        if bias is None:
            expect(layer["bias"] is None, f"{name}.{path} after merge_lora has a bias; the wrapped layer had none")
        else:
            expect(layer["bias"] is not None, f"{name}.{path} after merge_lora has no bias: keep the wrapped layer's")
            expect_close(layer["bias"], bias, f"{name}.{path}.bias after merge_lora", atol=0)


def _logits_shape(name: str) -> tuple[int, int, int]:
    """The shape of a model's logits on `tokens(...)`'s default (2, 7) batch."""
    return (2, 7, linear_layers(MODELS[name]())["out_head"].out_features)


def _merged_model(sub, name):
    """The logits before and after merge_lora, the LinearWithLoRA layers left after it and the merged state dict."""
    model = _adapted(sub, MODELS[name], seed=15)
    ids = tokens(16, vocab_size=SHARED_VOCAB)
    adapted = no_grad(model, ids)
    merge = _merge(sub, model)
    return {
        "merge": merge,
        "left": [path for path, module in model.named_modules() if isinstance(module, sub.LinearWithLoRA)],
        "adapted": adapted,
        "merged": no_grad(model, ids),
        "state": model.state_dict(),
    }


@merge_lora
@split(produce=_merged_model)
@pytest.mark.parametrize("name", MODELS)
def test_merged_model_gives_the_adapted_logits(outputs, name):
    _expect_merged_in_place(outputs["merge"], name)
    left = outputs["left"]
    expect(not left, f"{name}.{left[0] if left else ''} is still a LinearWithLoRA after merge_lora: merge at any depth")
    expect_tensor(outputs["adapted"], f"{name} logits with the adapters", shape=_logits_shape(name))
    expect_close(
        outputs["merged"],
        outputs["adapted"],
        f"{name} logits after merge_lora next to those with the adapters",
        atol=1e-4,
    )
    plain = MODELS[name]()
    try:
        plain.load_state_dict(outputs["state"])
    except RuntimeError as exc:
        fail(f"the merged {name}'s state dict does not load into a plain {name}: {str(exc).splitlines()[1].strip()}")


PARTLY_ADAPTED = ("trf_blocks.0.att.W_value", "trf_blocks.1.ff.layers.0", "out_head")  # GPTModel's layers with LoRA


def _plain_paths() -> list[str]:
    """The paths of the GPTModel's linear layers without LoRA."""
    return [path for path in linear_layers(gpt_model()) if path not in PARTLY_ADAPTED]


def _partly_merged(sub):
    """merge_lora on a float64 GPTModel with LoRA on PARTLY_ADAPTED: whether each plain linear layer is the
    same object after it, the merged layers' weights, and the logits before and after it (None after it
    where a parameter is no longer float64: the model would fail on mixed dtypes before the dtype is reported)."""
    model = _adapted(sub, gpt_model, seed=17, names=PARTLY_ADAPTED).double()
    plain = {path: model.get_submodule(path) for path in _plain_paths()}
    ids = tokens(18)
    adapted = no_grad(model, ids)
    merge = _merge(sub, model)
    return {
        "merge": merge,
        "kept": {path: model.get_submodule(path) is layer for path, layer in plain.items()},
        "weights": {path: model.get_submodule(path).weight for path in PARTLY_ADAPTED},
        "adapted": adapted,
        "merged": no_grad(model, ids) if all(p.dtype == torch.float64 for p in model.parameters()) else None,
    }


@merge_lora
@split(produce=_partly_merged)
def test_merge_keeps_dtype_and_plain_layers(outputs):
    _expect_merged_in_place(outputs["merge"], "a float64 GPTModel with LoRA on three of its layers")
    for path in _plain_paths():
        expect(
            outputs["kept"][path] is True,
            f"merge_lora replaced {path}, a plain nn.Linear without LoRA: leave layers without adapters as they are",
        )
    for path in PARTLY_ADAPTED:
        weight = outputs["weights"][path]
        expect_tensor(weight, f"{path}.weight after merge_lora")
        expect(
            weight.dtype == torch.float64,
            f"{path}.weight is {weight.dtype} after merging a float64 model: "
            "create the merged layer with the wrapped layer's dtype and device",
        )
    expect_tensor(outputs["adapted"], "float64 logits with the adapters", shape=_logits_shape("GPTModel"))
    expect_close(
        outputs["merged"],
        outputs["adapted"],
        "float64 logits after merge_lora next to those with the adapters",
        atol=1e-9,
    )


# ---------------------------------------------------------------- ch09.lora_finetune

COUNTED_TRAINABLE = 3 + 2 * 3 + 4 * 3 + 4 + 4 * 4 + 4  # the frozen weight, buffers and the second `shared` left out


def _counts(sub):
    """count_trainable_parameters (and the type it returns) of a small model with a frozen weight, buffers and
    a shared layer, then of the same model frozen."""
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Linear(3, 4), shared, shared)
    model[0].weight.requires_grad = False
    count = sub.count_trainable_parameters(model)
    for param in model.parameters():
        param.requires_grad = False
    return {
        "count": _observed(count),
        "type": type(count).__name__,
        "frozen": _observed(sub.count_trainable_parameters(model)),
    }


@lora_finetune
@split(produce=_counts)
def test_count_trainable_parameters(outputs):
    count = outputs["count"]
    expect(
        isinstance(count, numbers.Integral) and not isinstance(count, bool),
        f"count_trainable_parameters should return an int; got {outputs['type']}",
    )
    expect(
        count == COUNTED_TRAINABLE,
        f"count_trainable_parameters gives {count} for a model with {COUNTED_TRAINABLE} trainable "
        "parameters (count every entry of each parameter with requires_grad once; buffers are no parameters)",
    )
    expect(_equals_number(outputs["frozen"], 0), "count_trainable_parameters of a frozen model should be 0")


def _prepared_classifier(sub, name):
    """After prepare_lora_model on a classifier: whether it returned the model, the type of its out_head,
    its trainable parameters and count_trainable_parameters of it."""
    model = tiny_classifier(MODELS[name], seed=19)
    prepared = sub.prepare_lora_model(model, RANK, ALPHA)
    head = model.out_head
    return {
        "returns_the_model": prepared is model,
        "head": type(head).__name__,
        "head_is_wrapper": isinstance(head, sub.LinearWithLoRA),
        "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
        "count": _observed(sub.count_trainable_parameters(model)),
    }


@lora_finetune
@split(produce=_prepared_classifier)
@pytest.mark.parametrize("name", MODELS)
def test_lora_classifier_trains_only_the_lora_factors(outputs, recorded, name):
    model = tiny_classifier(MODELS[name], seed=19)
    linears = linear_layers(model)
    expected_count = lora_parameter_count(model, RANK)
    expect(outputs["returns_the_model"] is True, "prepare_lora_model should change the model in place and return it")
    expect(
        outputs["head_is_wrapper"] is True,
        f"the classifier's out_head is a {outputs['head']} after "
        "prepare_lora_model: the classification head gets LoRA too",
    )
    trainable = set(outputs["trainable"])
    wrong = sorted(trainable - lora_names(linears))
    if wrong:
        fail(
            f"after prepare_lora_model {name}'s classifier still trains {wrong[0]}: freeze every parameter first "
            "(chapter 6 left its last block, final norm and head trainable)"
        )
    expect(
        trainable == lora_names(linears),
        f"after prepare_lora_model {name}'s classifier trains "
        f"{len(trainable)} LoRA tensors; expected {len(linears) * 2} (A and B of each linear layer): was the model "
        "frozen after the LoRA layers were added?",
    )
    count = outputs["count"]
    expect(
        count == expected_count == recorded["classifier"][name]["count"],
        f"count_trainable_parameters of {name}'s LoRA classifier (rank {RANK}) gives {count:,}; expected "
        f"{expected_count:,}",
    )


def _prepared_logits(sub):
    return no_grad(sub.prepare_lora_model(tiny_classifier(gpt_model, seed=20), RANK, ALPHA), tokens(21))


@lora_finetune
@split(produce=_prepared_logits)
def test_lora_classifier_starts_as_the_classifier(outputs):
    expect_close(
        outputs,
        no_grad(tiny_classifier(gpt_model, seed=20), tokens(21)),
        "the classifier's logits after prepare_lora_model (B starts at zeros)",
        atol=ATOL,
    )


def finetune_losses(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """AdamW steps on one batch, on the last token's logits as chapter 6 trains; the losses before each step."""
    optimizer = compiler_free(torch.optim.AdamW)([p for p in model.parameters() if p.requires_grad], lr=FINETUNE_LR)
    losses = []
    model.train()
    for _ in range(FINETUNE_STEPS):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(ids)[:, -1, :], labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _finetuned(sub, recorded):
    """The losses of AdamW steps on the LoRA classifier from the recorded parameters, and its parameters after them."""
    case = recorded["classifier"]["run"]
    model = sub.prepare_lora_model(tiny_classifier(gpt_model, seed=22), RANK, ALPHA)
    load_parameters(model, case["state"], "the LoRA classifier")
    losses = finetune_losses(model, case["tokens"], case["labels"])
    return {"losses": losses, "parameters": dict(model.named_parameters())}


@lora_finetune
@split(produce=_finetuned)
def test_lora_finetuning_matches_recorded(outputs, recorded):
    case = recorded["classifier"]["run"]
    expect_list(outputs["losses"], FINETUNE_STEPS, "the fine-tuning losses")
    expect_close(
        torch.tensor(outputs["losses"]),
        torch.tensor(case["losses"]),
        f"the losses of {FINETUNE_STEPS} AdamW steps on the LoRA classifier",
        atol=1e-4,
    )
    for name, before in case["state"].items():
        if not name.endswith((".lora.A", ".lora.B")):
            expect(
                _same_tensor(outputs["parameters"][name], before),
                f"fine-tuning the LoRA classifier changed {name}: only A and B may train",
            )
