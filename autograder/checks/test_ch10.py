"""Public checks of chapter 10: automatic differentiation from scratch.

Every operation is checked as an expression (`x * y`, `x.sum(axis=(0, 2), keepdims=True)`,
`cross_entropy(x, y)`) that reads the same with the student's engine and with PyTorch: produce
evaluates it on the student's `Tensor`s and calls `backward()`, compare evaluates it on float64
torch tensors and calls PyTorch's autograd, and the values and gradients must agree. The cases
cover every way broadcasting stretches an operand. The graph itself (topological order,
accumulation, a second backward call) is checked on nodes the check builds by hand, with VJPs
that count their calls, so `backward()` is graded apart from the operations.

While the student's code runs, PyTorch's autograd entry points raise: the engine is written
from scratch, and a call to them fails the check with a message that says so.
"""

from __future__ import annotations

import contextlib
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from autograder.compare import expect, expect_close, expect_list, expect_tensor, fail
from autograder.forbidden import ForbiddenCall, forbid
from autograder.split import split

unbroadcast_exercise = pytest.mark.ch10_unbroadcast
backward_exercise = pytest.mark.ch10_backward
elementwise = pytest.mark.ch10_elementwise
matmul_and_reductions = pytest.mark.ch10_matmul_and_reductions
activations = pytest.mark.ch10_activations
softmax_cross_entropy = pytest.mark.ch10_softmax_cross_entropy
gradient_check_exercise = pytest.mark.ch10_gradient_check
train = pytest.mark.ch10_train

# The engine computes in float64, as PyTorch does here: agreement to ~1e-12 is the rule, and
# sums in another order differ by far less than these tolerances.
ATOL, RTOL = 1e-8, 1e-6
# PyTorch's ways to differentiate: the engine may not call them while its checks run.
AUTOGRAD = [
    "torch.autograd.backward",
    "torch.autograd.grad",
    "torch.Tensor.backward",
    "torch.func.grad",
    "torch.func.grad_and_value",
    "torch.func.vjp",
    "torch.func.jacrev",
    "torch.func.jacfwd",
]
OPS = [
    "add",
    "mul",
    "div",
    "matmul",
    "summation",
    "mean",
    "reshape",
    "transpose",
    "exp",
    "log",
    "tanh",
    "relu",
    "gelu",
    "softmax",
    "log_softmax",
    "cross_entropy",
]
VARIABLES = "xyzw"


@contextlib.contextmanager
def from_scratch(sub):
    """PyTorch's autograd raises ForbiddenCall while the block runs the student's engine."""
    with forbid(AUTOGRAD, [sub.namespace]):
        yield


def _sum_to(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    return x.sum() if shape == () else x.sum_to_size(shape)


def _summation(a, axis=None, keepdims=False):
    return a.sum(dim=tuple(range(a.ndim)) if axis is None else axis, keepdim=keepdims)


def _mean(a, axis=None, keepdims=False):
    return a.mean(dim=tuple(range(a.ndim)) if axis is None else axis, keepdim=keepdims)


def _cross_entropy(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# What each operation is in PyTorch: the expressions evaluate with these on torch tensors.
TORCH_OPS = {
    "add": torch.add,
    "mul": torch.mul,
    "div": torch.div,
    "matmul": torch.matmul,
    "summation": _summation,
    "mean": _mean,
    "reshape": torch.reshape,
    "transpose": lambda a, dim0=-2, dim1=-1: torch.transpose(a, dim0, dim1),
    "exp": torch.exp,
    "log": torch.log,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "gelu": lambda a: F.gelu(a, approximate="tanh"),
    "softmax": lambda a, axis=-1: torch.softmax(a, dim=axis),
    "log_softmax": lambda a, axis=-1: torch.log_softmax(a, dim=axis),
    "cross_entropy": _cross_entropy,
}


# ---------------------------------------------------------------- expressions: cases, produce, compare


def op_case(program: str, inputs: list, requires_grad: list | None = None, grad_out: str = "random", seed: int = 0):
    """One expression over the variables x, y, ... holding `inputs` (float tensors, or integer ones
    for targets), with `requires_grad` per input and the gradient backward() starts from: "random"
    (of the output's shape), "none" (backward() with no argument) or a number (a 0-d gradient)."""
    requires_grad = [not is_targets(x) for x in inputs] if requires_grad is None else requires_grad
    out = _evaluate_torch(program, inputs, [False] * len(inputs))[0]
    if grad_out == "random":
        gradient = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    elif grad_out == "none":
        gradient = None
    else:
        gradient = torch.tensor(float(grad_out), dtype=torch.float64)
    return {"program": program, "inputs": inputs, "requires_grad": requires_grad, "grad_out": gradient}


def is_targets(x: torch.Tensor) -> bool:
    return not x.dtype.is_floating_point


def _evaluate_torch(program: str, inputs: list, requires_grad: list):
    env = dict(TORCH_OPS)
    leaves = []
    for name, value, wanted in zip(VARIABLES, inputs, requires_grad):
        leaf = value.clone() if is_targets(value) else value.clone().double().requires_grad_(bool(wanted))
        env[name] = leaf
        leaves.append(leaf)
    return eval(program, {"__builtins__": {}}, env), leaves  # noqa: S307 - the grader's own expressions


def torch_result(case: dict) -> tuple[torch.Tensor, list]:
    """PyTorch's output and input gradients (None where an input requires none) for a case."""
    out, leaves = _evaluate_torch(case["program"], case["inputs"], case["requires_grad"])
    # The same VJP as out.backward(grad_out), through the implicit seed of a scalar: an explicit
    # gradient makes torch.autograd import its symbolic-shape machinery (sympy), a second or more.
    (out if case["grad_out"] is None else (out * case["grad_out"]).sum()).backward()
    return out.detach(), [None if is_targets(leaf) else leaf.grad for leaf in leaves]


def run_expression(sub, case: dict) -> dict:
    """The student's output and input gradients for one case ({"raised": message} if their code raised)."""
    env = {name: sub.namespace[name] for name in OPS if name in sub.namespace}
    leaves = []
    try:
        with from_scratch(sub):
            for name, value, wanted in zip(VARIABLES, case["inputs"], case["requires_grad"]):
                if is_targets(value):
                    env[name] = value.numpy()
                    continue
                env[name] = sub.Tensor(value.numpy(), requires_grad=bool(wanted))
                leaves.append(env[name])
            out = eval(case["program"], {"__builtins__": {}}, env)  # noqa: S307 - the grader's own expressions
            out.backward(None if case["grad_out"] is None else case["grad_out"].numpy())
            return {
                "out": np.array(out.data, dtype=np.float64),
                "grads": [None if leaf.grad is None else np.array(leaf.grad, dtype=np.float64) for leaf in leaves],
            }
    except (ForbiddenCall, NotImplementedError):
        raise
    except Exception as exc:  # noqa: BLE001 - reported against the case, the other cases still run
        return {"raised": f"{type(exc).__name__}: {exc}"}


def run_expressions(sub, case: list) -> list:
    """The student's results for a list of expression cases."""
    return [run_expression(sub, one) for one in case]


def describe(case: dict) -> str:
    """`program` with x (2, 3), y (3,) (constant): the case without its values."""
    parts = []
    for name, value, wanted in zip(VARIABLES, case["inputs"], case["requires_grad"]):
        kind = " (integer targets)" if is_targets(value) else ("" if wanted else " (constant)")
        parts.append(f"{name} {tuple(value.shape)}{kind}")
    start = " after backward() with no gradient" if case["grad_out"] is None else ""
    return f"`{case['program']}` with {', '.join(parts)}{start}"


def expect_expression(got, case: dict) -> None:
    """The student's result for `case` agrees with PyTorch: output, then each input's gradient."""
    what = describe(case)
    expect(isinstance(got, dict), f"{what}: no result")
    if "raised" in got:
        fail(f"{what}: your code raised {got['raised']}")
    out, grads = torch_result(case)
    expect_close(got.get("out"), out, f"{what}: the output", atol=ATOL, rtol=RTOL)
    float_inputs = [(n, v, w) for n, v, w in zip(VARIABLES, case["inputs"], case["requires_grad"]) if not is_targets(v)]
    expect_list(got.get("grads"), len(float_inputs), f"{what}: the inputs' gradients")
    expected_grads = [g for g, v in zip(grads, case["inputs"]) if not is_targets(v)]
    for (name, value, wanted), mine, expected in zip(float_inputs, got["grads"], expected_grads):
        if not wanted:
            expect(mine is None, f"{what}: {name} does not require grad, yet its .grad was set")
            continue
        expect(mine is not None, f"{what}: {name}.grad is None after backward(); {name} requires grad")
        if tuple(mine.shape) != tuple(value.shape):
            fail(
                f"{what}: {name}.grad has shape {tuple(mine.shape)}; expected {tuple(value.shape)}, the shape of {name}"
                " (a gradient has its tensor's shape: sum over the axes that broadcasting stretched)"
            )
        expect_close(mine, expected, f"{what}: {name}.grad", atol=ATOL, rtol=RTOL)


def expect_expressions(outputs, cases: list) -> None:
    expect_list(outputs, len(cases), "the results of the expressions")
    for got, case in zip(outputs, cases):
        expect_expression(got, case)


# ---------------------------------------------------------------- drawing cases (public: recorded; hidden: per seed)


class Draw:
    """Sizes from a random.Random and values from a torch generator, both from one seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def size(self, low: int = 2, high: int = 5) -> int:
        return self.rng.randint(low, high)

    def shape(self, ndim: int, low: int = 2, high: int = 5) -> tuple:
        return tuple(self.size(low, high) for _ in range(ndim))

    def normal(self, shape, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(shape, generator=self.gen, dtype=torch.float64) * scale

    def away_from_zero(self, shape) -> torch.Tensor:
        """Values in ±[0.5, 2): safe denominators."""
        magnitude = 0.5 + 1.5 * torch.rand(shape, generator=self.gen, dtype=torch.float64)
        return torch.where(torch.rand(shape, generator=self.gen) < 0.5, -magnitude, magnitude)

    def positive(self, shape) -> torch.Tensor:
        return 0.2 + 3 * torch.rand(shape, generator=self.gen, dtype=torch.float64)

    def targets(self, shape, classes: int) -> torch.Tensor:
        return torch.randint(0, classes, shape, generator=self.gen)

    def case(self, program: str, inputs: list, requires_grad=None, grad_out: str = "random") -> dict:
        return op_case(program, inputs, requires_grad, grad_out, seed=self.rng.randint(0, 2**31 - 1))


def _with_ones(shape: tuple, draw: Draw) -> tuple:
    """`shape` with one or two of its axes (at least one, never all) made size 1."""
    axes = draw.rng.sample(range(len(shape)), k=draw.rng.randint(1, max(1, len(shape) - 1)))
    return tuple(1 if axis in axes else size for axis, size in enumerate(shape))


BINARY = ["x + y", "x - y", "x * y", "x / y", "add(x, y)", "mul(x, y)", "div(x, y)"]


def broadcast_shapes(draw: Draw) -> dict[str, tuple[tuple, tuple]]:
    """(x's shape, y's shape) for every way broadcasting can pair two operands."""
    full = draw.shape(3)
    a, b = draw.size(), draw.size()
    return {
        "same shape": (full, full),
        "y with leading dims added": (full, full[draw.rng.randint(1, 2) :]),
        "x with leading dims added": (full[draw.rng.randint(1, 2) :], full),
        "y with size-1 dims": (full, _with_ones(full, draw)),
        "x with size-1 dims": (_with_ones(full, draw), full),
        "both sides stretched": ((a, 1), (1, b)),
        "both sides, added and size-1 dims": ((full[0], 1, full[2]), (full[1], 1)),
        "y a scalar tensor": (full[1:], ()),
        "x a scalar tensor": ((), full[1:]),
    }


def elementwise_cases(seed: int) -> list:
    """Every binary operator and function on every broadcasting class, scalars on both sides,
    constant operands and reused nodes."""
    draw = Draw(seed)
    cases = []
    for x_shape, y_shape in broadcast_shapes(draw).values():
        for program in BINARY:
            cases.append(draw.case(program, [draw.normal(x_shape), draw.away_from_zero(y_shape)]))
    shape = draw.shape(2)
    number = round(draw.rng.uniform(0.5, 3.0), 2)
    for program in ["{c} + x", "x + {c}", "{c} - x", "x - {c}", "{c} * x", "x * {c}", "{c} / x", "x / {c}", "-x"]:
        cases.append(draw.case(program.format(c=number), [draw.away_from_zero(shape)]))
    full = draw.shape(3)
    for program in ["x * y", "x / y", "x - y"]:
        cases.append(draw.case(program, [draw.normal(full), draw.away_from_zero(full[1:])], [True, False]))
        cases.append(draw.case(program, [draw.normal(full[1:]), draw.away_from_zero(full)], [False, True]))
    cases.append(draw.case("x * y + x", [draw.normal(full), draw.normal(full[2:])]))
    cases.append(draw.case("x * x - x / y", [draw.normal(full[1:]), draw.away_from_zero(full)]))
    return cases


def matmul_reduction_cases(seed: int) -> list:
    draw = Draw(seed)
    n, k, m, b = draw.shape(4)
    cases = [
        draw.case("x @ y", [draw.normal((n, k)), draw.normal((k, m))]),
        draw.case("matmul(x, y)", [draw.normal((b, n, k)), draw.normal((k, m))]),
        draw.case("x @ y", [draw.normal((n, k)), draw.normal((b, k, m))]),
        draw.case("x @ y", [draw.normal((1, n, k)), draw.normal((b, k, m))]),
        draw.case("x @ y", [draw.normal((b, n, k)), draw.normal((b, k, m))]),
        draw.case("x @ y", [draw.normal((n, n)), draw.normal((n, n))]),
    ]
    shape = draw.shape(3)
    side = draw.size(3, 5)
    for reduce in ["sum", "mean"]:
        function = "summation" if reduce == "sum" else "mean"
        programs = [
            f"x.{reduce}()",
            f"x.{reduce}(axis=0)",
            f"x.{reduce}(axis=1)",
            f"x.{reduce}(axis=2)",
            f"x.{reduce}(axis=-1)",
            f"x.{reduce}(axis=(0, 2))",
            f"x.{reduce}(axis=1, keepdims=True)",
            f"x.{reduce}(axis=(0, -1), keepdims=True)",
            f"{function}(x, axis=-2)",
            f"{function}(x, None, True)",
        ]
        for program in programs:
            cases.append(
                draw.case(program, [draw.normal(shape)], grad_out="none" if program.endswith("()") else "random")
            )
        for program in [f"x.{reduce}(axis=0)", f"x.{reduce}(axis=1)"]:
            cases.append(draw.case(program, [draw.normal((side, side))]))
    a, c = draw.size(), draw.size()
    cases += [
        draw.case("x.reshape(-1)", [draw.normal((a, c, 2))]),
        draw.case(f"x.reshape({c}, -1)", [draw.normal((a, c, 2))]),
        draw.case(f"reshape(x, (2, {a}, {c}))", [draw.normal((a, 2 * c))]),
        draw.case("x.T", [draw.normal((a, c))]),
        draw.case("x.transpose(0, 2)", [draw.normal((a, c, 2))]),
        draw.case("transpose(x, 0, 1)", [draw.normal((a, c, 2))]),
        draw.case("x.transpose(-1, -3) @ y", [draw.normal((a, c, 2)), draw.normal((a, c))]),
        draw.case(
            "(x @ y.T).sum(axis=0) * y.mean(axis=1)", [draw.normal((a, c)), draw.normal((a, c))], grad_out="random"
        ),
    ]
    return cases


def activation_cases(seed: int) -> list:
    draw = Draw(seed)
    shape = draw.shape(draw.rng.randint(1, 3))
    with_zeros = draw.normal(shape) * 3
    with_zeros.view(-1)[:: draw.size(2, 3)] = 0.0
    wide = draw.normal(shape) * 5
    wide.view(-1)[0], wide.view(-1)[-1] = 12.0, -12.0
    return [
        draw.case("exp(x)", [draw.normal(shape)]),
        draw.case("x.exp()", [draw.normal(shape)]),
        draw.case("log(x)", [draw.positive(shape)]),
        draw.case("x.log()", [draw.positive(shape)]),
        draw.case("tanh(x)", [draw.normal(shape) * 2]),
        draw.case("x.tanh()", [wide]),
        draw.case("relu(x)", [with_zeros]),
        draw.case("x.relu()", [draw.normal(shape)]),
        draw.case("gelu(x)", [draw.normal(shape) * 2]),
        draw.case("gelu(x)", [wide]),
        draw.case("gelu(x)", [with_zeros]),
        draw.case("tanh(exp(x) * y) + relu(gelu(x))", [draw.normal(shape), draw.normal(shape[-1:])]),
    ]


def softmax_cases(seed: int) -> list:
    draw = Draw(seed)
    rows, classes = draw.size(2, 6), draw.size(3, 7)
    cube = draw.shape(3)
    batch, tokens = draw.size(2, 3), draw.size(2, 4)
    large = draw.normal((rows, classes)) * 1000
    return [
        draw.case("softmax(x)", [draw.normal((rows, classes))]),
        draw.case("softmax(x, axis=0)", [draw.normal((rows, classes))]),
        draw.case("softmax(x, axis=1)", [draw.normal(cube)]),
        draw.case("softmax(x, axis=-1)", [large]),
        draw.case("log_softmax(x)", [draw.normal((rows, classes))]),
        draw.case("log_softmax(x, axis=0)", [draw.normal(cube)]),
        draw.case("log_softmax(x, axis=-2)", [draw.normal(cube)]),
        draw.case("log_softmax(x)", [large.clone()]),
        draw.case(
            "cross_entropy(x, y)", [draw.normal((rows, classes)), draw.targets((rows,), classes)], grad_out="none"
        ),
        draw.case(
            "cross_entropy(x, y)",
            [draw.normal((batch, tokens, classes)), draw.targets((batch, tokens), classes)],
            grad_out="2.5",
        ),
        draw.case("cross_entropy(x, y)", [large.clone(), draw.targets((rows,), classes)], grad_out="none"),
        draw.case(
            "cross_entropy(x @ y, z)",
            [draw.normal((rows, 3)), draw.normal((3, classes)), draw.targets((rows,), classes)],
        ),
    ]


def unbroadcast_cases(seed: int) -> list:
    """(grad, the operand's shape) for every way an operand can have been stretched."""
    draw = Draw(seed)
    a, b, c, d = draw.shape(4)
    shapes = [
        ((a, b, c), (b, c)),  # one leading axis added
        ((a, b, c), (c,)),  # two leading axes added
        ((a, b, c), (a, 1, c)),  # a size-1 axis inside
        ((a, b, c), (1, b, c)),  # a size-1 first axis
        ((a, b, c), (b, 1)),  # added and size-1 at once
        ((a, b, c, d), (1, c, 1)),
        ((a, b, c), ()),  # a scalar
        ((a, b, c), (a, b, c)),  # nothing broadcast
        ((a, 1, c), (1, 1, c)),  # size 1 in both
        ((b, b), (b, 1)),  # square: the axis matters
        ((b, b), (1, b)),
    ]
    return [{"grad": draw.normal(grad_shape), "shape": list(shape)} for grad_shape, shape in shapes]


def graph_arrays(seed: int) -> dict:
    """The values of the hand-built graphs: x, u, v, w and an output gradient g of one shape, a chain depth."""
    draw = Draw(seed)
    shape = draw.shape(draw.rng.randint(1, 2))
    values = {name: draw.normal(shape) for name in ["x", "u", "v", "w", "g"]}
    return {**values, "depth": draw.rng.randint(250, 300)}


def gradient_check_case(seed: int) -> dict:
    draw = Draw(seed)
    return {
        "x": draw.normal(draw.shape(2)),
        "y": draw.normal(draw.shape(1)),
        "s": draw.normal(()),
        "m": draw.normal(draw.shape(3)),
        "cubic": draw.away_from_zero((draw.size(3, 6),)),
        "eps": 1e-2,
    }


def train_case(seed: int) -> dict:
    draw = Draw(seed)
    d_in, hidden, classes, batch = draw.size(3, 6), draw.size(4, 8), draw.size(3, 5), draw.size(6, 12)
    params = {
        "W1": draw.normal((d_in, hidden), 0.5),
        "b1": draw.normal((hidden,), 0.1),
        "W2": draw.normal((hidden, classes), 0.5),
        "b2": draw.normal((classes,), 0.1),
    }
    return {
        "params": params,
        "x": draw.normal((batch, d_in)),
        "targets": draw.targets((batch,), classes),
        "lr": round(draw.rng.uniform(0.3, 0.8), 2),
        "steps": 4,
    }


# ---------------------------------------------------------------- ch10.unbroadcast


def run_unbroadcast(sub, case: list) -> list:
    """unbroadcast's result for each (grad, shape) of a list ("Error: message" where it raised)."""
    results = []
    for one in case:
        try:
            with from_scratch(sub):
                results.append(np.array(sub.unbroadcast(one["grad"].numpy().copy(), tuple(one["shape"]))))
        except (ForbiddenCall, NotImplementedError):
            raise
        except Exception as exc:  # noqa: BLE001 - reported against the case
            results.append(f"{type(exc).__name__}: {exc}")
    return results


def expect_unbroadcast(outputs, cases: list) -> None:
    expect_list(outputs, len(cases), "the unbroadcast results")
    for got, case in zip(outputs, cases):
        shape = tuple(case["shape"])
        what = f"unbroadcast(grad of shape {tuple(case['grad'].shape)}, {shape})"
        if isinstance(got, str):
            fail(f"{what} raised {got}")
        expect_tensor(got, what)
        if tuple(got.shape) != shape:
            fail(f"{what} has shape {tuple(got.shape)}; expected exactly {shape}")
        expect_close(got, _sum_to(case["grad"], shape), what, atol=ATOL, rtol=RTOL)


def _recorded_unbroadcast(sub, recorded):
    return run_unbroadcast(sub, recorded["unbroadcast"])


@unbroadcast_exercise
@split(produce=_recorded_unbroadcast)
def test_unbroadcast_sums_every_stretched_axis(outputs, recorded):
    """leading axes added, size-1 axes expanded, both, scalars and nothing broadcast, as Tensor.sum_to_size"""
    expect_unbroadcast(outputs, recorded["unbroadcast"])


# ---------------------------------------------------------------- ch10.backward: hand-built graphs


def _constructed(sub) -> dict:
    """What the constructor makes of ints, float32 arrays and arrays changed afterwards; requires_grad flags."""
    with from_scratch(sub):
        Tensor = sub.Tensor
        ints = Tensor([1, 2, 3])
        source = np.arange(4, dtype=np.float32)
        from_float32 = Tensor(source)
        source[0] = 7.0
        source64 = np.ones(3)
        from_float64 = Tensor(source64)
        source64 += 1.0
        scalar = Tensor(2.5)
        leaf, constant = Tensor(1.0, requires_grad=True), Tensor(2.0)

        def vjp(g):
            return g, g

        child = Tensor(3.0, _parents=(leaf, constant), _vjp=vjp)
        constant_child = Tensor(3.0, _parents=(constant, constant), _vjp=vjp)
        grandchild = Tensor(3.0, _parents=(child, constant), _vjp=vjp)
        return {
            "types": [type(t.data).__name__ for t in (ints, from_float32, from_float64, scalar)],
            "dtypes": [str(np.asarray(t.data).dtype) for t in (ints, from_float32, from_float64, scalar)],
            "ints": np.asarray(ints.data, dtype=np.float64),
            "from_float32": np.asarray(from_float32.data, dtype=np.float64),
            "from_float64": np.asarray(from_float64.data, dtype=np.float64),
            "scalar_shape": list(np.shape(scalar.data)),
            "grad": [t.grad is None for t in (ints, leaf, child)],
            "requires_grad": [bool(t.requires_grad) for t in (ints, leaf, constant, child, constant_child, grandchild)],
        }


@backward_exercise
@split(produce=_constructed)
def test_tensor_holds_a_float64_copy(outputs):
    """data is a new float64 array; grad starts as None; an op's result requires grad when an input does"""
    expect(
        outputs["types"] == ["ndarray"] * 4,
        f"Tensor.data should be a NumPy array for numbers, lists and arrays; got {outputs['types']}",
    )
    expect(
        outputs["dtypes"] == ["float64"] * 4,
        f"Tensor.data should be float64 whatever it was made from (ints, float32, float64, a number); got {outputs['dtypes']}",
    )
    expect_close(outputs["ints"], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), "Tensor([1, 2, 3]).data")
    expect(
        bool((outputs["from_float32"] == torch.arange(4.0, dtype=torch.float64)).all())
        and bool((outputs["from_float64"] == 1.0).all()),
        "changing an array after making a Tensor from it changed the Tensor's data: store a copy "
        "(np.array(data, dtype=np.float64)), as torch.tensor does",
    )
    expect(
        outputs["scalar_shape"] == [], f"Tensor(2.5).data should be 0-d (shape ()); got shape {outputs['scalar_shape']}"
    )
    expect(outputs["grad"] == [True] * 3, "a new Tensor's .grad should be None")
    flags = outputs["requires_grad"]
    names = [
        "Tensor([1, 2, 3])",
        "Tensor(1.0, requires_grad=True)",
        "Tensor(2.0)",
        "a result with a parent that requires grad",
        "a result whose parents are all constants",
        "a result whose parent is itself such a result",
    ]
    for name, got, wanted in zip(names, flags, [False, True, False, True, False, True]):
        expect(got == wanted, f"{name}: requires_grad is {got}; expected {wanted}")


class Graphs:
    """Hand-built graphs on the student's Tensor, each node's VJP counting its calls.

    The values are NumPy arrays from a case of `graph_arrays`; every node is a linear map of its
    parents, so the gradients are known in closed form (`expected_graph_grads`)."""

    def __init__(self, sub, case: dict):
        self.Tensor = sub.Tensor
        self.a = {name: case[name].numpy() for name in ["x", "u", "v", "w", "g"]}
        self.depth = int(case["depth"])
        self.calls: dict[str, int] = {}

    def node(self, name: str, parents: tuple, value, vjp):
        self.calls[name] = 0

        def counted(g):
            self.calls[name] += 1
            return vjp(g)

        return self.Tensor(value, _parents=parents, _vjp=counted)

    def scale(self, name: str, parent, factor):
        return self.node(name, (parent,), parent.data * factor, lambda g: (g * factor,))

    def leaf(self):
        return self.Tensor(self.a["x"], requires_grad=True)

    def chain(self):
        x = self.leaf()
        out = self.scale("b", self.scale("a", x, 2.0), self.a["u"])
        return x, out

    def square(self):
        x = self.leaf()
        return x, self.node("square", (x, x), x.data * x.data, lambda g: (g * x.data, g * x.data))

    def diamond(self):
        """x -> a; a -> b and a -> c -> c2; (b, c2) -> d: a is shared, the paths have different lengths."""
        a = self.a
        x = self.leaf()
        shared = self.scale("a", x, 1.5)
        b, c = self.scale("b", shared, a["u"]), self.scale("c", shared, a["v"])
        c2 = self.scale("c2", c, a["w"])
        return x, self.node("d", (b, c2), b.data + c2.data, lambda g: (g, g))

    def skip(self):
        """x used deep in the graph and directly by the output."""
        x = self.leaf()
        inner = self.scale("a", x, self.a["u"])
        return x, self.node("d", (inner, x), inner.data + x.data, lambda g: (g, g))

    def deep(self):
        x = self.leaf()
        node = x
        for i in range(self.depth):
            node = self.scale(f"n{i}", node, 1.001)
        return x, node


def _graph_grads(sub, case):
    """x.grad (and VJP call counts) after backward(g) on each hand-built graph."""
    results = {}
    with from_scratch(sub):
        for name in ["chain", "square", "diamond", "skip", "deep"]:
            graphs = Graphs(sub, case)
            x, out = getattr(graphs, name)()
            out.backward(graphs.a["g"].copy())
            results[name] = {"grad": None if x.grad is None else np.array(x.grad), "calls": dict(graphs.calls)}
    return results


def expected_graph_grads(case: dict) -> dict:
    x, u, v, w, g = (case[name] for name in ["x", "u", "v", "w", "g"])
    return {
        "chain": 2 * u * g,
        "square": 2 * x * g,
        "diamond": 1.5 * (u + v * w) * g,
        "skip": (u + 1) * g,
        "deep": 1.001 ** int(case["depth"]) * g,
    }


def graph_nodes(name: str, case: dict) -> list[str]:
    """The names of the inner nodes of hand-built graph `name`, whose VJP calls are counted."""
    deep = [f"n{i}" for i in range(int(case["depth"]))]
    return {"chain": ["a", "b"], "square": ["square"], "diamond": ["a", "b", "c", "c2", "d"], "skip": ["a", "d"]}.get(
        name, deep
    )


GRAPH_NAMES = {
    "chain": "a chain x -> 2x -> 2x * u",
    "square": "x * x (one node with x as both parents)",
    "diamond": "a diamond (x -> a, a -> b, a -> c -> c2, b + c2)",
    "skip": "a graph using x deep inside and again at the output",
    "deep": "a chain of a few hundred nodes",
}


def expect_graph_grads(outputs, case: dict, times: int = 1) -> None:
    expected = expected_graph_grads(case)
    expect(isinstance(outputs, dict), "no results for the hand-built graphs")
    for name, description in GRAPH_NAMES.items():
        got = outputs.get(name)
        expect(isinstance(got, dict), f"no result for {description}")
        expect(got["grad"] is not None, f"{description}: x.grad is None after backward(); x requires grad")
        for node in graph_nodes(name, case):
            count = got["calls"].get(node)
            if count != times:
                fail(
                    f"{description}: the VJP of node {node} ran {count} times in {times} backward() call(s); "
                    "each node should pass its gradient on once per call, after every node that uses it "
                    "has contributed (reverse topological order)"
                )
        expect_close(got["grad"], times * expected[name], f"{description}: x.grad", atol=ATOL, rtol=RTOL)


def _recorded_graph_grads(sub, recorded):
    return _graph_grads(sub, recorded["graph"])


@backward_exercise
@split(produce=_recorded_graph_grads)
def test_backward_visits_each_node_once(outputs, recorded):
    """a chain, a node used twice, a diamond, a skip connection and a deep chain: gradients and VJP calls"""
    expect_graph_grads(outputs, recorded["graph"])


def _graph_grads_twice(sub, case):
    """x.grad after two backward calls on each graph; leaves x and y of x + y whose VJP returns one array for both."""
    results = {}
    with from_scratch(sub):
        for name in ["diamond", "skip", "square"]:
            graphs = Graphs(sub, case)
            x, out = getattr(graphs, name)()
            out.backward(graphs.a["g"].copy())
            out.backward(graphs.a["g"].copy())
            results[name] = {"grad": None if x.grad is None else np.array(x.grad), "calls": dict(graphs.calls)}
        graphs = Graphs(sub, case)
        x, y = graphs.leaf(), sub.Tensor(graphs.a["u"], requires_grad=True)
        total = graphs.node("sum", (x, y), x.data + y.data, lambda g: (g, g))
        g = graphs.a["g"].copy()
        total.backward(g)
        total.backward(g)
        results["shared"] = [None if t.grad is None else np.array(t.grad) for t in (x, y)]
    return results


def expect_accumulated(outputs, case: dict) -> None:
    expected = expected_graph_grads(case)
    expect(isinstance(outputs, dict), "no results for the second backward() calls")
    for name in ["diamond", "skip", "square"]:
        got = outputs.get(name)
        expect(isinstance(got, dict), f"no result for {GRAPH_NAMES[name]}")
        what = f"{GRAPH_NAMES[name]}, after a second backward()"
        expect(got["grad"] is not None, f"{what}: x.grad is None")
        for node in graph_nodes(name, case):
            count = got["calls"].get(node)
            expect(count == 2, f"{what}: the VJP of node {node} ran {count} times in 2 backward() calls; expected 2")
        if torch.allclose(got["grad"], expected[name], atol=ATOL):
            fail(f"{what}: x.grad holds one call's gradient; the second call should add to it, as in PyTorch")
        expect_close(got["grad"], 2 * expected[name], f"{what}: x.grad", atol=ATOL, rtol=RTOL)
    shared = outputs.get("shared")
    expect_list(shared, 2, "the gradients of x and y in x + y")
    for name, grad in zip("xy", shared):
        what = f"x + y (whose VJP returns the same array for x and y), after two backward() calls: {name}.grad"
        expect(grad is not None, f"{what} is None")
        expect_close(
            grad,
            2 * case["g"],
            what + " (an in-place += into an array that another tensor's .grad also holds counts twice)",
            atol=ATOL,
            rtol=RTOL,
        )


def _recorded_twice(sub, recorded):
    return _graph_grads_twice(sub, recorded["graph"])


@backward_exercise
@split(produce=_recorded_twice)
def test_second_backward_accumulates(outputs, recorded):
    """a second backward() adds the same gradient again to the leaves, as in PyTorch"""
    expect_accumulated(outputs, recorded["graph"])


def _seeds_and_constants(sub, case):
    """backward() without a gradient on one-number outputs and on a larger one; a constant leaf's grad."""
    with from_scratch(sub):
        graphs = Graphs(sub, case)
        a = graphs.a
        x = graphs.leaf()
        total = graphs.node("total", (x,), (x.data * a["u"]).sum(), lambda g: (g * a["u"],))
        total.backward()
        x2 = graphs.leaf()
        single = graphs.node("single", (x2,), (x2.data * a["v"]).sum().reshape(1, 1), lambda g: (g.sum() * a["v"],))
        single.backward()
        lone = sub.Tensor(a["v"].reshape(-1)[:1].reshape(1, 1), requires_grad=True)
        lone.backward()
        constant = sub.Tensor(a["w"])
        product = graphs.node("product", (graphs.leaf(), constant), a["x"] * a["w"], lambda g: (g * a["w"], g * a["x"]))
        x3 = product._parents[0]
        product.backward(a["g"].copy())
        try:
            graphs.scale("big", graphs.leaf(), 2.0).backward()
            raised = None
        except (ForbiddenCall, NotImplementedError):
            raise
        except Exception as exc:  # noqa: BLE001 - any exception will do
            raised = type(exc).__name__
        return {
            "scalar": None if x.grad is None else np.array(x.grad),
            "one_by_one": None if x2.grad is None else np.array(x2.grad),
            "lone_leaf": None if lone.grad is None else np.array(lone.grad),
            "constant_grad_is_none": constant.grad is None,
            "with_constant": None if x3.grad is None else np.array(x3.grad),
            "raised": raised,
        }


def expect_seeds_and_constants(outputs, case: dict) -> None:
    u, v, w, g = (case[name] for name in ["u", "v", "w", "g"])
    expect(outputs["scalar"] is not None, "backward() on a 0-d result: x.grad is None")
    expect_close(outputs["scalar"], u, "backward() with no gradient on a 0-d result (the seed is 1): x.grad")
    expect(outputs["one_by_one"] is not None, "backward() on a (1, 1) result: x.grad is None")
    expect_close(outputs["one_by_one"], v, "backward() with no gradient on a (1, 1) result (the seed is ones): x.grad")
    expect(outputs["lone_leaf"] is not None, "backward() on a leaf of shape (1, 1): its .grad is None")
    expect_close(
        outputs["lone_leaf"],
        torch.ones(1, 1, dtype=torch.float64),
        "backward() with no gradient on a leaf of shape (1, 1) (the seed is ones of the tensor's shape): its .grad",
    )
    expect(outputs["constant_grad_is_none"] is True, "a leaf with requires_grad=False got a .grad; it should stay None")
    expect(outputs["with_constant"] is not None, "x * c with a constant c: x.grad is None")
    expect_close(outputs["with_constant"], g * w, "x * c with a constant c: x.grad", atol=ATOL, rtol=RTOL)
    expect(
        outputs["raised"] is not None,
        "backward() with no gradient on a result of several numbers ran without complaint; raise an error "
        "(RuntimeError, as PyTorch does): a gradient of 1 only makes sense for a single number",
    )


def _recorded_seeds(sub, recorded):
    return _seeds_and_constants(sub, recorded["graph"])


@backward_exercise
@split(produce=_recorded_seeds)
def test_backward_seed_and_constants(outputs, recorded):
    """backward() alone seeds 1 for one number and refuses larger results; constants get no .grad"""
    expect_seeds_and_constants(outputs, recorded["graph"])


# ---------------------------------------------------------------- the operations


def _recorded_expressions(key: str):
    def produce(sub, recorded):
        return run_expressions(sub, recorded[key])

    produce.__name__ = f"_recorded_{key}"
    return produce


@elementwise
@split(produce=_recorded_expressions("elementwise"))
def test_elementwise_agree_with_torch_autograd(outputs, recorded):
    """+ - * / and add, mul, div on every broadcasting class, Python numbers on both sides, constants, reused inputs"""
    expect_expressions(outputs, recorded["elementwise"])


@matmul_and_reductions
@split(produce=_recorded_expressions("matmul_and_reductions"))
def test_matmul_reductions_agree_with_torch_autograd(outputs, recorded):
    """batched and broadcast matmul, sum and mean over every axis kind, reshape, transpose and .T"""
    expect_expressions(outputs, recorded["matmul_and_reductions"])


@activations
@split(produce=_recorded_expressions("activations"))
def test_activations_agree_with_torch_autograd(outputs, recorded):
    """exp, log, tanh, relu (exact zeros included) and gelu (approximate="tanh"), functions and methods"""
    expect_expressions(outputs, recorded["activations"])


@softmax_cross_entropy
@split(produce=_recorded_expressions("softmax_cross_entropy"))
def test_softmax_cross_entropy_agree_with_torch_autograd(outputs, recorded):
    """softmax and log_softmax over any axis, logits in the thousands, cross-entropy on (N, C) and (B, T, C)"""
    expect_expressions(outputs, recorded["softmax_cross_entropy"])


# ---------------------------------------------------------------- ch10.gradient_check


def _numerical(sub, case):
    """numerical_grad on a one-input function, a three-input one (one input 0-d), and a cubic with a large eps."""
    x, y, s, m, cubic = (case[name].numpy().copy() for name in ["x", "y", "s", "m", "cubic"])
    before = [a.copy() for a in (x, y, s, m, cubic)]
    with from_scratch(sub):
        one = sub.numerical_grad(lambda a: np.sum(np.sin(a) * a), [x])
        three = sub.numerical_grad(
            lambda a, b, c: np.sum(np.tanh(a @ np.ones((a.shape[1], 1))) * c) + np.sum(b**3) * c, [x, y, s]
        )
        with_m = sub.numerical_grad(lambda a: np.sum(np.exp(a / 3)), [m])
        eps = float(case["eps"])
        cubic_grad = sub.numerical_grad(lambda a: np.sum(a**3), [cubic], eps=eps)
    after = [a for a in (x, y, s, m, cubic)]
    return {
        "one": [np.asarray(g, dtype=np.float64) for g in one],
        "three": [np.asarray(g, dtype=np.float64) for g in three],
        "with_m": [np.asarray(g, dtype=np.float64) for g in with_m],
        "cubic": [np.asarray(g, dtype=np.float64) for g in cubic_grad],
        "unchanged": [bool(np.array_equal(a, b)) for a, b in zip(before, after)],
    }


def expect_numerical(outputs, case: dict) -> None:
    x, y, s, m, cubic = (case[name] for name in ["x", "y", "s", "m", "cubic"])
    eps = float(case["eps"])
    expected = {
        "one": [torch.cos(x) * x + torch.sin(x)],
        "three": [
            (1 - torch.tanh(x.sum(dim=1, keepdim=True)) ** 2).expand_as(x) * s,
            3 * y**2 * s,
            torch.tanh(x.sum(dim=1)).sum() + (y**3).sum(),
        ],
        "with_m": [torch.exp(m / 3) / 3],
    }
    names = {
        "one": "numerical_grad of sum(sin(x) * x)",
        "three": "numerical_grad of a function of three inputs (the third 0-d)",
        "with_m": "numerical_grad of sum(exp(x / 3)) for a 3-d x",
    }
    for key, grads in expected.items():
        expect_list(outputs[key], len(grads), f"{names[key]}: one gradient per input")
        for i, (got, want) in enumerate(zip(outputs[key], grads)):
            expect_close(got, want, f"{names[key]}, input {i}", atol=1e-6, rtol=1e-5)
    central = 3 * cubic**2 + eps**2  # exact for a cubic: the error of a central difference is eps**2 f'''/6
    expect_list(outputs["cubic"], 1, "numerical_grad of sum(x**3)")
    got = outputs["cubic"][0]
    expect_tensor(got, f"numerical_grad of sum(x**3) with eps={eps}", shape=tuple(cubic.shape))
    if torch.allclose(got, 3 * cubic**2 + 3 * cubic * eps + eps**2, atol=1e-6):
        fail(
            f"numerical_grad of sum(x**3) with eps={eps} is off by about 3 * x * eps: that is a one-sided difference "
            "(f(x + eps) - f(x)) / eps; use the central one, (f(x + eps) - f(x - eps)) / (2 * eps)"
        )
    expect_close(got, central, f"numerical_grad of sum(x**3) with eps={eps}", atol=1e-6, rtol=1e-6)
    expect(
        outputs["unchanged"] == [True] * 5,
        "numerical_grad changed its input arrays: put every perturbed entry back to its original value",
    )


def _recorded_numerical(sub, recorded):
    return _numerical(sub, recorded["gradient_check"])


@gradient_check_exercise
@split(produce=_recorded_numerical)
def test_numerical_grad_uses_central_differences(outputs, recorded):
    """central differences on functions of one and several inputs (0-d and 3-d ones too); inputs restored"""
    expect_numerical(outputs, recorded["gradient_check"])


def _checked_function(sub, weights: np.ndarray, slip):
    """f(x, y) = sum(x * weights) + sum(y**2) / 2 as one node of the student's Tensor, whose VJP is
    (g * weights, g * y) changed by `slip(grad_x, grad_y)`."""

    def f(x, y):
        def vjp(g):
            return slip(g * weights, g * y.data)

        return sub.Tensor(np.sum(x.data * weights) + np.sum(y.data**2) / 2, _parents=(x, y), _vjp=vjp)

    return f


def _one_entry(grad_x, grad_y):
    grad_y = grad_y.copy()
    grad_y.reshape(-1)[-1] += 0.1
    return grad_x, grad_y


# How each checked function's VJP is changed, and the tolerances gradient_check gets: name -> (slip, kwargs).
SLIPS = {
    "correct": (lambda gx, gy: (gx, gy), {}),
    "off by 0.1 in one entry of y": (_one_entry, {}),
    "twice the gradient of x": (lambda gx, gy: (2 * gx, gy), {}),
    "no gradient for y": (lambda gx, gy: (gx, np.zeros_like(gy)), {}),
    "off by 1e-4 everywhere, atol=1e-3": (lambda gx, gy: (gx + 1e-4, gy), {"atol": 1e-3}),
    "off by 1e-4 everywhere, atol=1e-6, rtol=0": (lambda gx, gy: (gx + 1e-4, gy), {"atol": 1e-6, "rtol": 0.0}),
    "off by a relative 1e-4 on large gradients, rtol=1e-3": (
        lambda gx, gy: (gx * (1 + 1e-4), gy),
        {"atol": 1e-4, "rtol": 1e-3},
    ),
    "off by a relative 1e-4 on large gradients, rtol=1e-6": (
        lambda gx, gy: (gx * (1 + 1e-4), gy),
        {"atol": 1e-4, "rtol": 1e-6},
    ),
}
SLIP_VERDICTS = [True, False, False, False, True, False, True, False]


def _gradient_checks(sub, case):
    """gradient_check's verdicts on one function with correct and slipped VJPs; whether the inputs survived."""
    x, y = case["x"].numpy().copy(), case["y"].numpy().copy()
    weights = 1 + case["x"].numpy() ** 2
    large = 1000 * weights
    verdicts, types = [], []
    with from_scratch(sub):
        for name, (slip, kwargs) in SLIPS.items():
            f = _checked_function(sub, large if "large" in name else weights, slip)
            verdict = sub.gradient_check(f, [x, y], **kwargs)
            verdicts.append(bool(verdict))
            types.append(type(verdict).__name__)
        ignores_y = sub.gradient_check(
            lambda a, b: sub.Tensor(np.sum(a.data), _parents=(a,), _vjp=lambda g: (g * np.ones_like(a.data),)), [x, y]
        )
    return {
        "verdicts": verdicts,
        "types": types,
        "ignores_y": bool(ignores_y),
        "unchanged": bool(np.array_equal(x, case["x"].numpy()) and np.array_equal(y, case["y"].numpy())),
    }


def expect_gradient_checks(outputs) -> None:
    expect_list(outputs["verdicts"], len(SLIPS), "gradient_check's verdicts")
    expect_list(outputs["types"], len(SLIPS), "the types of gradient_check's verdicts")
    for (name, _), got, wanted, kind in zip(SLIPS.items(), outputs["verdicts"], SLIP_VERDICTS, outputs["types"]):
        expect(kind in ("bool", "bool_"), f"gradient_check should return True or False; got a {kind}")
        expect(
            got == wanted,
            f"gradient_check of f(x, y) = sum(x * w) + sum(y**2) / 2 with a VJP that is {name}: "
            f"returned {got}; expected {wanted}",
        )
    expect(
        outputs["ignores_y"] is True,
        "gradient_check of a function that does not use its second input returned False: "
        "an input whose .grad stays None has gradient zero, as central differences find",
    )
    expect(
        outputs["unchanged"] is True, "gradient_check changed the arrays it was given; work on copies or restore them"
    )


def _recorded_gradient_checks(sub, recorded):
    return _gradient_checks(sub, recorded["gradient_check"])


@gradient_check_exercise
@split(produce=_recorded_gradient_checks)
def test_gradient_check_finds_wrong_vjps(outputs, recorded):
    """True for a correct VJP, False for slips in one entry, one input or a factor; atol and rtol honoured"""
    expect_gradient_checks(outputs)


# ---------------------------------------------------------------- ch10.train


def _training(sub, case):
    """The losses of a few train_step calls and the parameters (and their .grad) after each."""
    with from_scratch(sub):
        params = {name: sub.Tensor(value.numpy(), requires_grad=True) for name, value in case["params"].items()}
        x, targets = case["x"].numpy(), case["targets"].numpy()
        losses, states, grads_reset = [], [], []
        for _ in range(int(case["steps"])):
            loss = sub.train_step(params, x, targets, float(case["lr"]))
            losses.append(loss if isinstance(loss, float) else repr(type(loss).__name__))
            states.append({name: np.array(p.data, dtype=np.float64) for name, p in params.items()})
            grads_reset.append(all(p.grad is None for p in params.values()))
    return {"losses": losses, "states": states, "grads_reset": grads_reset}


def torch_training(case: dict) -> tuple[list, list]:
    """The same steps in PyTorch: losses and parameters after each step."""
    params = {name: value.clone().double().requires_grad_(True) for name, value in case["params"].items()}
    x, targets = case["x"].double(), case["targets"]
    torch_losses, states = [], []
    for _ in range(int(case["steps"])):
        logits = torch.tanh(x @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        with torch.no_grad():
            for weight in params.values():
                weight -= case["lr"] * weight.grad
                weight.grad = None
        torch_losses.append(loss.item())
        states.append({name: p.detach().clone() for name, p in params.items()})
    return torch_losses, states


def expect_training(outputs, case: dict) -> None:
    losses, states = torch_training(case)
    steps = int(case["steps"])
    expect_list(outputs["losses"], steps, "the losses train_step returned")
    for step, (got, want) in enumerate(zip(outputs["losses"], losses)):
        expect(
            isinstance(got, float), f"train_step should return the loss as a Python float; step {step} returned {got}"
        )
        expect(
            abs(got - want) <= 1e-8 + 1e-6 * abs(want),
            f"train_step's loss at step {step}: got {got:.8g}, expected {want:.8g}"
            + (" (the first step's loss is the loss before any update)" if step == 0 else ""),
        )
        for name, value in states[step].items():
            expect_close(outputs["states"][step][name], value, f"{name} after step {step}", atol=ATOL, rtol=RTOL)
        expect(
            outputs["grads_reset"][step] is True,
            f"after train_step (step {step}) a parameter's .grad is not None; reset every .grad to None",
        )


def _recorded_training(sub, recorded):
    return _training(sub, recorded["train"])


@train
@split(produce=_recorded_training)
def test_train_step_matches_torch(outputs, recorded):
    """four steps of the MLP against the same steps in PyTorch: losses, parameters, gradients reset"""
    expect_training(outputs, recorded["train"])
