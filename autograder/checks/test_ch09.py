"""Public checks of chapter 9: LoRA.

The LoRA layer is checked against its formula and, for its initialisation, against the
distribution Kaiming-uniform draws from (seed-free: the bound, the spread and the mean of a
thousand entries); the wrapped linear layer against the frozen layer plus the update, its
gradients included; the replacement and the merge on chapter 4's GPTModel and chapter 8's
Llama3Model, layer by layer, with parameter names, trainable counts and logits; the LoRA
classifier against chapter 6's classifier and a recorded run of AdamW steps.
"""

from __future__ import annotations

import math
import numbers

import pytest
import torch
from torch import nn

from autograder.checks.llama_setups import SMALL_LLAMA
from autograder.checks.modules import expect_gradients_reach, expect_parameter_names, load_parameters, randomised
from autograder.compare import expect, expect_close, expect_close_or_name_the_mistake, expect_tensor, fail

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


def tiny_gpt(seed: int) -> nn.Module:
    """Chapter 4's GPTModel with random parameters, in eval mode."""
    return randomised(gpt_model(), seed=seed, std=0.3).eval()


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


def random_like(param: torch.Tensor, seed: int, std: float = 0.5) -> torch.Tensor:
    return torch.randn(param.shape, generator=torch.Generator().manual_seed(seed), dtype=param.dtype) * std


# ---------------------------------------------------------------- ch09.lora_layer


@lora_layer
def test_lora_layer_parameters(sub):
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    what = f"LoRALayer(10, 6, {RANK}, {ALPHA})"
    expect_parameter_names(layer, {"A": torch.empty(10, RANK), "B": torch.empty(RANK, 6)}, what)
    expect(
        getattr(layer, "alpha", None) == ALPHA,
        f"{what}.alpha is {getattr(layer, 'alpha', 'missing')}; keep the scaling as self.alpha",
    )


@lora_layer
def test_lora_update_is_zero_at_initialisation(sub):
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    expect(
        bool((layer.B == 0).all()),
        "LoRALayer's B should start at zeros, so that the update starts at exactly zero "
        "and the adapted model starts as the pretrained one",
    )
    x = torch.randn(2, 4, 10)
    out = no_grad(layer, x)
    expect_tensor(out, "LoRALayer(10, 6, ...) output on a (2, 4, 10) input", shape=(2, 4, 6))
    expect(bool((out == 0).all()), "a fresh LoRALayer's output should be exactly zero (B starts at zeros)")


@lora_layer
@pytest.mark.parametrize("in_dim, rank", [(48, 25), (400, 4)])
def test_a_is_kaiming_uniform_over_its_fan_in(sub, in_dim, rank):
    A = sub.LoRALayer(in_dim, 5, rank, ALPHA).A.detach().double().flatten()
    what = f"A of LoRALayer({in_dim}, 5, {rank}, ...)"
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


@lora_layer
def test_lora_layer_computes_alpha_x_a_b(sub):
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    A, B = random_like(layer.A, 1), random_like(layer.B, 2)
    load_parameters(layer, {"A": A, "B": B}, f"LoRALayer(10, 6, {RANK}, {ALPHA})")
    for shape in ((5, 10), (2, 3, 10), (1, 2, 3, 10)):
        x = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)))
        what = f"LoRALayer(10, 6, {RANK}, alpha={ALPHA}) output on a {shape} input"
        actual = no_grad(layer, x)
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


@lora_layer
def test_lora_gradients_reach_a_and_b(sub):
    layer = sub.LoRALayer(10, 6, RANK, ALPHA)
    load_parameters(layer, {"A": random_like(layer.A, 3), "B": random_like(layer.B, 4)}, "LoRALayer")
    expect_gradients_reach(layer, layer(torch.randn(3, 10)), "LoRALayer")


# ---------------------------------------------------------------- ch09.linear_with_lora


def _wrapped(sub, bias: bool = True, seed: int = 0):
    """(a random nn.Linear(10, 6), LinearWithLoRA around a copy of it)."""
    torch.manual_seed(seed)
    linear = nn.Linear(10, 6, bias=bias)
    copy = nn.Linear(10, 6, bias=bias)
    copy.load_state_dict(linear.state_dict())
    return linear, sub.LinearWithLoRA(copy, RANK, ALPHA)


@linear_with_lora
@pytest.mark.parametrize("bias", [True, False])
def test_linear_with_lora_parameters(sub, bias):
    _, wrapped = _wrapped(sub, bias)
    expected = {"linear.weight": torch.empty(6, 10), "lora.A": torch.empty(10, RANK), "lora.B": torch.empty(RANK, 6)}
    if bias:
        expected["linear.bias"] = torch.empty(6)
    expect_parameter_names(wrapped, expected, f"LinearWithLoRA(nn.Linear(10, 6, bias={bias}), {RANK}, {ALPHA})")
    expect(
        isinstance(wrapped.lora, sub.LoRALayer),
        f"LinearWithLoRA.lora should be a LoRALayer; got {type(wrapped.lora).__name__}",
    )
    expect(
        getattr(wrapped.lora, "alpha", None) == ALPHA,
        f"LinearWithLoRA(linear, {RANK}, {ALPHA}).lora.alpha is "
        f"{getattr(wrapped.lora, 'alpha', 'missing')}: pass alpha on to the LoRALayer",
    )


@linear_with_lora
def test_only_a_and_b_are_trainable(sub):
    _, wrapped = _wrapped(sub)
    trainable = {name for name, param in wrapped.named_parameters() if param.requires_grad}
    if "linear.weight" in trainable or "linear.bias" in trainable:
        hint = (
            " (setting requires_grad on the module object does nothing: set it on each parameter)"
            if getattr(wrapped.linear, "requires_grad", None) is False
            else ""
        )
        fail(
            f"LinearWithLoRA leaves {' and '.join(sorted(trainable & {'linear.weight', 'linear.bias'}))} trainable: "
            f"freeze the wrapped layer's weight and bias (requires_grad = False){hint}"
        )
    expect(
        trainable == {"lora.A", "lora.B"},
        f"LinearWithLoRA's trainable parameters are {sorted(trainable)}; expected lora.A and lora.B",
    )


@linear_with_lora
@pytest.mark.parametrize("bias", [True, False])
def test_linear_with_lora_starts_as_the_linear_layer(sub, bias):
    linear, wrapped = _wrapped(sub, bias, seed=5)
    x = torch.randn(2, 3, 10)
    expect_close(
        wrapped.linear.weight, linear.weight, "LinearWithLoRA.linear.weight (the wrapped layer's own weight)", atol=0
    )
    expect_close(
        no_grad(wrapped, x),
        no_grad(linear, x),
        f"a fresh LinearWithLoRA's output (bias={bias}) next to the wrapped layer's",
        atol=ATOL,
    )


def _trained_looking(wrapped, seed: int):
    A, B = random_like(wrapped.lora.A, seed), random_like(wrapped.lora.B, seed + 1)
    with torch.no_grad():
        wrapped.lora.A.copy_(A)
        wrapped.lora.B.copy_(B)
    return A, B


@linear_with_lora
def test_linear_with_lora_adds_the_update(sub):
    linear, wrapped = _wrapped(sub, seed=6)
    A, B = _trained_looking(wrapped, 7)
    x = torch.randn(4, 2, 10)
    plain = no_grad(linear, x)
    actual = no_grad(wrapped, x)
    expect_tensor(actual, "LinearWithLoRA output on a (4, 2, 10) input", shape=(4, 2, 6))
    mistakes = (
        ("returns the LoRA update alone: add the wrapped layer's output", ALPHA * (x @ A @ B)),
        ("ignores the LoRA update", plain),
    )
    expect_close_or_name_the_mistake(
        actual,
        plain + ALPHA * (x @ A @ B),
        "LinearWithLoRA output with a non-zero B (linear(x) + alpha * x @ A @ B)",
        "LinearWithLoRA",
        mistakes,
        atol=ATOL,
    )


@linear_with_lora
def test_gradients_reach_only_a_and_b(sub):
    linear, wrapped = _wrapped(sub, seed=8)
    A, B = _trained_looking(wrapped, 9)
    x = torch.randn(3, 10)
    weighting = torch.randn(3, 6, generator=torch.Generator().manual_seed(10))
    (wrapped(x) * weighting).sum().backward()
    for name in ("linear.weight", "linear.bias"):
        grad = wrapped.get_parameter(name).grad
        expect(grad is None or not grad.any(), f"a gradient reaches LinearWithLoRA.{name}: the wrapped layer is frozen")
    A_leaf, B_leaf = A.clone().requires_grad_(), B.clone().requires_grad_()
    ((linear(x).detach() + ALPHA * (x @ A_leaf @ B_leaf)) * weighting).sum().backward()
    for name, expected in (("lora.A", A_leaf.grad), ("lora.B", B_leaf.grad)):
        grad = wrapped.get_parameter(name).grad
        expect(grad is not None, f"no gradient reaches LinearWithLoRA.{name}")
        expect_close(grad, expected, f"the gradient of LinearWithLoRA.{name}", atol=ATOL)


# ---------------------------------------------------------------- ch09.replace_linear_with_lora


def expect_linears_wrapped(sub, model: nn.Module, originals: dict[str, tuple], rank: int, alpha: float, what: str):
    """Each nn.Linear that was at a path of `originals` ({path: (weight, bias)}) is now a LinearWithLoRA
    around a plain nn.Linear with the same weights, and no other module is one."""
    for path, (weight, bias) in originals.items():
        module = model.get_submodule(path)
        if not isinstance(module, sub.LinearWithLoRA):
            fail(
                f"{what}.{path} is a {type(module).__name__} after replace_linear_with_lora, not a LinearWithLoRA: "
                "replace each nn.Linear child and recurse into every other child, at any depth"
            )
        inner = module.linear
        expect(
            isinstance(inner, nn.Linear) and not isinstance(inner, sub.LinearWithLoRA),
            f"{what}.{path}.linear is a {type(inner).__name__}: the wrapped layer should be the original nn.Linear "
            "(was a LinearWithLoRA walked into and wrapped again?)",
        )
        expect(
            torch.equal(inner.weight, weight) and (bias is None or torch.equal(inner.bias, bias)),
            f"{what}.{path}.linear no longer holds the original layer's weight and bias",
        )
        expect(
            tuple(module.lora.A.shape) == (inner.in_features, rank) and module.lora.alpha == alpha,
            f"{what}.{path}.lora should have rank {rank} and alpha {alpha}: pass them on",
        )
    extra = [
        name
        for name, module in model.named_modules()
        if isinstance(module, sub.LinearWithLoRA) and name not in originals
    ]
    expect(not extra, f"{what}.{extra[0] if extra else ''} is a LinearWithLoRA where there was no nn.Linear")


def _originals(model: nn.Module) -> dict[str, tuple]:
    return {
        name: (layer.weight.detach().clone(), None if layer.bias is None else layer.bias.detach().clone())
        for name, layer in linear_layers(model).items()
    }


MODELS = {"GPTModel": gpt_model, "Llama3Model": llama_model}


@replace_linear_with_lora
@pytest.mark.parametrize("name", MODELS)
def test_every_linear_layer_is_wrapped(sub, name):
    model = randomised(MODELS[name](), seed=11, std=0.3)
    originals = _originals(model)
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    expect_linears_wrapped(sub, model, originals, RANK, ALPHA, name)


@replace_linear_with_lora
@pytest.mark.parametrize("name", MODELS)
def test_replacement_keeps_the_outputs(sub, name):
    model = randomised(MODELS[name](), seed=12, std=0.3).eval()
    ids = tokens(13, vocab_size=min(TINY_GPT["vocab_size"], SMALL_LLAMA["vocab_size"]))
    before = no_grad(model, ids)
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    expect_close(
        no_grad(model, ids), before, f"{name} logits after replace_linear_with_lora (B starts at zeros)", atol=ATOL
    )


def adapted_parameter_names(model: nn.Module) -> set[str]:
    """The parameter names `model` has once each of its linear layers is wrapped: the book's
    `linear` and `lora` attributes, and `A` and `B` in the LoRA layer."""
    linears = linear_layers(model)
    names = set()
    for name, _ in model.named_parameters():
        owner, _, leaf = name.rpartition(".")
        names.add(f"{owner}.linear.{leaf}" if owner in linears else name)
    return names | lora_names(linears)


@replace_linear_with_lora
@pytest.mark.parametrize("name", MODELS)
def test_replacement_names_and_trainable_count(sub, recorded, name):
    model = MODELS[name]()
    linears = linear_layers(model)
    expected_names, expected_count = adapted_parameter_names(model), lora_parameter_count(model, RANK)
    for param in model.parameters():
        param.requires_grad = False
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    names = {n for n, _ in model.named_parameters()}
    missing, extra = sorted(expected_names - names), sorted(names - expected_names)
    expect(not missing, f"{name} after replace_linear_with_lora has no parameter {missing[0] if missing else ''}")
    expect(not extra, f"{name} after replace_linear_with_lora has an unexpected parameter {extra[0] if extra else ''}")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen_lora, trained_other = sorted(lora_names(linears) - trainable), sorted(trainable - lora_names(linears))
    expect(not frozen_lora, f"{frozen_lora[0] if frozen_lora else ''} does not train after replace_linear_with_lora")
    expect(
        not trained_other,
        f"{trained_other[0] if trained_other else ''} of the frozen {name} trains after "
        "replace_linear_with_lora: only the LoRA factors should",
    )
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expect(
        count == expected_count == recorded["replace"][name],
        f"{name} (frozen) has {count:,} trainable parameters after replace_linear_with_lora with rank {RANK}; "
        f"expected {expected_count:,}: rank * (in_features + out_features) for each of its {len(linears)} linear layers",
    )


@replace_linear_with_lora
def test_replacement_leaves_the_other_parameters_alone(sub):
    model = gpt_model()
    model.tok_emb.weight.requires_grad = False
    flags = {
        n: p.requires_grad for n, p in model.named_parameters() if n.rpartition(".")[0] not in linear_layers(model)
    }
    sub.replace_linear_with_lora(model, RANK, ALPHA)
    now = dict(model.named_parameters())
    for name, flag in flags.items():
        expect(
            now[name].requires_grad == flag,
            f"replace_linear_with_lora changed requires_grad of {name}: it only "
            "replaces the linear layers (prepare_lora_model does the freezing)",
        )


# ---------------------------------------------------------------- ch09.merge_lora


def _adapted(sub, make_model, seed: int, names=None) -> nn.Module:
    """A model with LinearWithLoRA layers (every linear one, or those in `names`), every parameter
    random: B no longer zero, as after training."""
    model = wrap_linears(sub.LinearWithLoRA, make_model(), RANK, ALPHA, names)
    return randomised(model, seed=seed, std=0.3).eval()


def _expected_merges(sub, model: nn.Module) -> dict[str, tuple]:
    """{path: (weight + alpha * (A @ B).T, bias, [(mistake, the weight it gives)])} for each LinearWithLoRA."""
    merges = {}
    with torch.no_grad():
        for path, module in model.named_modules():
            if isinstance(module, sub.LinearWithLoRA):
                weight, lora = module.linear.weight, module.lora
                update = lora.A @ lora.B
                mistakes = [
                    ("adds (A @ B).T without alpha", weight + update.T),
                    (
                        "scales by alpha / rank: alpha multiplies the update as it is",
                        weight + lora.alpha / RANK * update.T,
                    ),
                ]
                if update.shape[0] == update.shape[1]:
                    mistakes.append(
                        (
                            "adds A @ B untransposed: nn.Linear's weight is (out_features, in_features)",
                            weight + lora.alpha * update,
                        )
                    )
                bias = None if module.linear.bias is None else module.linear.bias.clone()
                merges[path] = (weight + lora.alpha * update.T, bias, mistakes)
    return merges


def _merge(sub, model: nn.Module, what: str) -> nn.Module:
    merged = sub.merge_lora(model)
    expect(
        merged is model,
        f"merge_lora({what}) should change the model in place and return it; got "
        f"{type(merged).__name__ if merged is not model else ''}",
    )
    return merged


@merge_lora
@pytest.mark.parametrize("name", MODELS)
def test_merged_layers_hold_the_merged_weights(sub, name):
    model = _adapted(sub, MODELS[name], seed=14)
    expected = _expected_merges(sub, model)
    _merge(sub, model, name)
    for path, (weight, bias, mistakes) in expected.items():
        module = model.get_submodule(path)
        expect(
            isinstance(module, nn.Linear) and not isinstance(module, sub.LinearWithLoRA),
            f"{name}.{path} is a {type(module).__name__} after merge_lora; it should be a plain nn.Linear",
        )
        expect_tensor(
            module.weight, f"{name}.{path}.weight after merge_lora", shape=tuple(weight.shape), dtype=weight.dtype
        )
        expect_close_or_name_the_mistake(
            module.weight,
            weight,
            f"{name}.{path}.weight after merge_lora (weight + alpha * (A @ B).T)",
            f"merge_lora at {path}",
            mistakes,
            atol=ATOL,
        )
        if bias is None:
            expect(module.bias is None, f"{name}.{path} after merge_lora has a bias; the wrapped layer had none")
        else:
            expect(module.bias is not None, f"{name}.{path} after merge_lora has no bias: keep the wrapped layer's")
            expect_close(module.bias, bias, f"{name}.{path}.bias after merge_lora", atol=0)


@merge_lora
@pytest.mark.parametrize("name", MODELS)
def test_merged_model_gives_the_adapted_logits(sub, name):
    model = _adapted(sub, MODELS[name], seed=15)
    ids = tokens(16, vocab_size=min(TINY_GPT["vocab_size"], SMALL_LLAMA["vocab_size"]))
    adapted = no_grad(model, ids)
    merged = _merge(sub, model, name)
    left = [path for path, module in merged.named_modules() if isinstance(module, sub.LinearWithLoRA)]
    expect(not left, f"{name}.{left[0] if left else ''} is still a LinearWithLoRA after merge_lora: merge at any depth")
    expect_close(
        no_grad(merged, ids), adapted, f"{name} logits after merge_lora next to those with the adapters", atol=1e-4
    )
    plain = MODELS[name]()
    try:
        plain.load_state_dict(merged.state_dict())
    except RuntimeError as exc:
        fail(f"the merged {name}'s state dict does not load into a plain {name}: {str(exc).splitlines()[1].strip()}")


@merge_lora
def test_merge_keeps_dtype_and_plain_layers(sub):
    adapted_names = {"trf_blocks.0.att.W_value", "trf_blocks.1.ff.layers.0", "out_head"}
    model = _adapted(sub, gpt_model, seed=17, names=adapted_names).double()
    plain = {
        path: layer
        for path, layer in linear_layers(model).items()
        if path not in adapted_names and path.rpartition(".")[0] not in adapted_names
    }
    ids = tokens(18)
    adapted = no_grad(model, ids)
    merged = _merge(sub, model, "a float64 GPTModel with LoRA on three of its layers")
    for path, layer in plain.items():
        expect(
            merged.get_submodule(path) is layer,
            f"merge_lora replaced {path}, a plain nn.Linear without LoRA: leave layers without adapters as they are",
        )
    for path in adapted_names:
        weight = merged.get_submodule(path).weight
        expect(
            weight.dtype == torch.float64,
            f"{path}.weight is {weight.dtype} after merging a float64 model: "
            "create the merged layer with the wrapped layer's dtype and device",
        )
    expect_close(
        no_grad(merged, ids), adapted, "float64 logits after merge_lora next to those with the adapters", atol=1e-9
    )


# ---------------------------------------------------------------- ch09.lora_finetune


@lora_finetune
def test_count_trainable_parameters(sub):
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Linear(3, 4), shared, shared)
    model[0].weight.requires_grad = False
    expected = 3 + 2 * 3 + 4 * 3 + 4 + 4 * 4 + 4  # the frozen weight, buffers and the second `shared` left out
    count = sub.count_trainable_parameters(model)
    expect(
        isinstance(count, numbers.Integral) and not isinstance(count, bool),
        f"count_trainable_parameters should return an int; got {type(count).__name__}",
    )
    expect(
        count == expected,
        f"count_trainable_parameters gives {count} for a model with {expected} trainable "
        "parameters (count every entry of each parameter with requires_grad once; buffers are no parameters)",
    )
    for param in model.parameters():
        param.requires_grad = False
    expect(sub.count_trainable_parameters(model) == 0, "count_trainable_parameters of a frozen model should be 0")


@lora_finetune
@pytest.mark.parametrize("name", MODELS)
def test_lora_classifier_trains_only_the_lora_factors(sub, recorded, name):
    model = tiny_classifier(MODELS[name], seed=19)
    linears = linear_layers(model)
    expected_count = lora_parameter_count(model, RANK)
    prepared = sub.prepare_lora_model(model, RANK, ALPHA)
    expect(prepared is model, "prepare_lora_model should change the model in place and return it")
    head = model.out_head
    expect(
        isinstance(head, sub.LinearWithLoRA),
        f"the classifier's out_head is a {type(head).__name__} after "
        "prepare_lora_model: the classification head gets LoRA too",
    )
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
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
    count = sub.count_trainable_parameters(model)
    expect(
        count == expected_count == recorded["classifier"][name]["count"],
        f"count_trainable_parameters of {name}'s LoRA classifier (rank {RANK}) gives {count:,}; expected "
        f"{expected_count:,}",
    )


@lora_finetune
def test_lora_classifier_starts_as_the_classifier(sub):
    model = tiny_classifier(gpt_model, seed=20)
    ids = tokens(21)
    before = no_grad(model, ids)
    expect_close(
        no_grad(sub.prepare_lora_model(model, RANK, ALPHA), ids),
        before,
        "the classifier's logits after prepare_lora_model (B starts at zeros)",
        atol=ATOL,
    )


def finetune_losses(model: nn.Module, ids: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """AdamW steps on one batch, on the last token's logits as chapter 6 trains; the losses before each step."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=FINETUNE_LR)
    losses = []
    model.train()
    for _ in range(FINETUNE_STEPS):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(ids)[:, -1, :], labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@lora_finetune
def test_lora_finetuning_matches_recorded(sub, recorded):
    case = recorded["classifier"]["run"]
    model = sub.prepare_lora_model(tiny_classifier(gpt_model, seed=22), RANK, ALPHA)
    load_parameters(model, case["state"], "the LoRA classifier")
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith((".lora.A", ".lora.B"))}
    losses = finetune_losses(model, case["tokens"], case["labels"])
    expect_close(
        torch.tensor(losses),
        torch.tensor(case["losses"]),
        f"the losses of {FINETUNE_STEPS} AdamW steps on the LoRA classifier",
        atol=1e-4,
    )
    for name, param in model.named_parameters():
        if name in frozen:
            expect(
                torch.equal(param, frozen[name]),
                f"fine-tuning the LoRA classifier changed {name}: only A and B may train",
            )
