"""Hidden checks in three steps, so that student code only produces outputs.

A split check is three functions:

    setup(ref, seed) -> case           draws the inputs (grader)
    produce(sub, case) -> outputs      runs the student's code on them (submission's process)
    compare(outputs, case, ref)        checks the outputs against the live reference (grader)

    @exercise_marker
    @split(setup=_draw, produce=_run_student)
    def test_f_agrees_with_reference(outputs, case, ref):
        expect_close(outputs["out"], ref.f(case["x"]), "f on a hidden input")

Each step names the fixtures it needs (setup: ref, seed, gpt2; produce: sub, case,
gpt2, tmp_path; compare: outputs, case, ref, seed, gpt2, tmp_path). A case and the
outputs are data: tensors, numbers, strings, None, and lists, tuples and dicts of
them (`as_data`); they cross between steps as the bytes `dumps` writes and `loads`
reads (PyTorch's weights-only loading, which makes no objects of other types).

Run by pytest (`course check --hidden`, the self-test) the three steps run one after
the other, through those bytes, so a local run checks exactly what grading checks.
When a submission is graded (`course grade`), the grader runs setup and compare in
its own process (`autograder.grading.verdicts`) and the submission's process runs
only produce: it never holds the reference, and what it reports about a split check
is its outputs, not a verdict.
"""

from __future__ import annotations

import functools
import inspect
import io
import numbers
import zlib
from collections.abc import Callable
from typing import Any

from autograder.compare import fail

SETUP_FIXTURES = frozenset({"ref", "seed", "gpt2"})
PRODUCE_FIXTURES = frozenset({"sub", "case", "gpt2", "tmp_path"})
COMPARE_FIXTURES = frozenset({"outputs", "case", "ref", "seed", "gpt2", "tmp_path"})


def as_data(value: Any, what: str = "the output") -> Any:
    """`value` as plain data: tensors detached, copied and stripped of subclasses, NumPy values as
    tensors and numbers; anything else fails the check, naming `what`."""
    import numpy as np
    import torch

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu").clone().as_subclass(torch.Tensor)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.array(value))
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [as_data(item, f"{what}[{i}]") for i, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {_key(key, what): as_data(item, f"{what}[{key!r}]") for key, item in value.items()}
    fail(f"{what} is a {type(value).__name__}; expected tensors, numbers, text, or lists of them")


def _key(key: Any, what: str) -> str | int:
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return key
    fail(f"{what} has a key of type {type(key).__name__}; expected text or integer keys")


def dumps(data: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def loads(blob: bytes) -> Any:
    """Data written by `dumps`; refuses anything that would make objects of other types."""
    import torch

    return torch.load(io.BytesIO(blob), weights_only=True)


def check_id(module_name: str, function_name: str) -> str:
    return f"{module_name}::{function_name}"


def check_seed(run_seed: int, check_name: str) -> int:
    """The seed of one check's inputs, from the run's seed: a regrade draws the same inputs."""
    return (run_seed * 1_000_003 + zlib.crc32(check_name.encode())) % 2**31


def _parameters(function: Callable, allowed: frozenset[str], step: str) -> list[str]:
    names = list(inspect.signature(function).parameters)
    unknown = sorted(set(names) - allowed)
    if unknown:
        raise TypeError(f"{function.__qualname__}: a split check's {step} cannot take {', '.join(unknown)}")
    return names


def call_with(function: Callable, fixtures: dict[str, Any]) -> Any:
    """`function` called with the fixtures it names."""
    return function(**{name: fixtures[name] for name in inspect.signature(function).parameters})


def split(*, setup: Callable, produce: Callable) -> Callable[[Callable], Callable]:
    """Make `compare` (the decorated test) a split check with the given setup and produce steps."""

    def decorate(compare: Callable) -> Callable:
        wanted = [
            *_parameters(setup, SETUP_FIXTURES, "setup"),
            *_parameters(produce, PRODUCE_FIXTURES, "produce"),
            *_parameters(compare, COMPARE_FIXTURES, "compare"),
        ]
        fixtures = list(dict.fromkeys(name for name in wanted if name not in ("case", "outputs")))

        @functools.wraps(compare)
        def check(request, produce_only, **given):
            if produce_only is not None:
                produce_only(request.node, check)
                return
            given["case"] = loads(dumps(as_data(call_with(setup, given), "the case")))
            given["outputs"] = loads(dumps(as_data(call_with(produce, given))))
            call_with(compare, given)

        del check.__wrapped__  # pytest would read the fixtures from compare's signature
        check.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in ("request", "produce_only", *fixtures)]
        )
        check.setup, check.produce, check.compare = setup, produce, compare
        return check

    return decorate


def split_checks(module) -> dict[str, Callable]:
    """The split checks of a check module, by check id."""
    return {
        check_id(module.__name__, name): value
        for name, value in vars(module).items()
        if name.startswith("test_") and callable(value) and hasattr(value, "produce")
    }
