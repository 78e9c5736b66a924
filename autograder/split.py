"""Checks in three steps, so that student code only produces outputs.

A split check is three functions:

    setup(ref, seed) -> case           draws the inputs (grader; optional)
    produce(sub, case) -> outputs      runs the student's code on them (submission's process)
    compare(outputs, case, ref)        checks the outputs (grader)

    @exercise_marker
    @split(setup=_draw, produce=_run_student)
    def test_f_agrees_with_reference(outputs, case, ref):
        expect_close(outputs["out"], ref.f(case["x"]), "f on a hidden input")

Each step names the fixtures it needs. Setup may take ref, seed, recorded and gpt2;
compare may take outputs, case, ref, seed, recorded, gpt2 and tmp_path; produce
takes sub and case and any pytest fixture, never ref or seed (the inputs drawn
from the seed reach it as the case). Without a setup the case is
None. A `pytest.mark.parametrize` under `@split` gives every step its parameters
by name. A case and the outputs are data: tensors, numbers, strings, None, and
lists, tuples and dicts of them (`as_data`); they cross between steps as the bytes
`dumps` writes and `loads` reads (JSON and safetensors, which make no objects of
other types).

Every check, public and hidden, is split. Run by pytest (`course check`, the
self-test) the three steps run one after the other, through those bytes, so a
local run checks exactly what grading checks. When a submission is graded
(`course grade`), the grader runs setup and compare in its own process
(`autograder.grading.verdicts`) and the submission's process runs only produce:
it never holds the reference, and what it reports of a check is its outputs,
never a verdict.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import zlib
from collections.abc import Callable
from typing import Any

from autograder.compare import CheckFailure, fail

SETUP_FIXTURES = frozenset({"ref", "seed", "recorded", "gpt2"})
COMPARE_FIXTURES = frozenset({"outputs", "case", "ref", "seed", "recorded", "gpt2", "tmp_path"})
# Produce runs in the submission's process: any pytest fixture but these.
NOT_FOR_PRODUCE = frozenset({"ref", "outputs", "seed"})


def as_data(value: Any, what: str = "the output") -> Any:
    """`value` as plain data: tensors detached, copied and stripped of subclasses, NumPy values as
    tensors and numbers; anything else fails the check, naming `what`."""
    import numpy as np
    import torch

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
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
    """`as_data` data as bytes: its structure as JSON (each list, tuple, dict, bytes and tensor a
    one-key object: L, U, D, B, T), then its tensors in safetensors' format."""
    import json

    from safetensors.torch import save

    tensors: dict[str, Any] = {}
    header = json.dumps(_encoded(data, tensors), separators=(",", ":")).encode()
    return len(header).to_bytes(8, "little") + header + (save(tensors) if tensors else b"")


def _encoded(value: Any, tensors: dict) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        tensors[str(len(tensors))] = value.contiguous()
        return {"T": len(tensors) - 1}
    if isinstance(value, bytes):
        return {"B": value.hex()}
    if isinstance(value, list):
        return {"L": [_encoded(item, tensors) for item in value]}
    if isinstance(value, tuple):
        return {"U": [_encoded(item, tensors) for item in value]}
    if isinstance(value, dict):
        return {"D": [[key, _encoded(item, tensors)] for key, item in value.items()]}
    return value


def loads(blob: bytes) -> Any:
    """Data written by `dumps`: JSON and safetensors, which make no objects but plain data and tensors;
    anything else raises ValueError."""
    import json

    from safetensors.torch import load

    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    tensors = load(blob[8 + size :]) if len(blob) > 8 + size else {}
    return _decoded(header, tensors)


def _decoded(value: Any, tensors: dict) -> Any:
    if not isinstance(value, dict):
        if isinstance(value, list):
            raise ValueError("a list outside its L tag")
        return value
    if len(value) != 1:
        raise ValueError(f"not a tagged value: {sorted(value)[:3]}")
    ((tag, content),) = value.items()
    if tag == "T":
        return tensors[str(content)]
    if tag == "B":
        return bytes.fromhex(content)
    if tag in ("L", "U"):
        items = [_decoded(item, tensors) for item in content]
        return items if tag == "L" else tuple(items)
    if tag == "D":
        return {key: _decoded(item, tensors) for key, item in content}
    raise ValueError(f"unknown tag {tag!r}")


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


def grader_fixtures(
    step: Callable, key: str, params: dict, stack, *, seed: int, ref: Any = None, recorded: dict | None = None
) -> dict[str, Any]:
    """What a setup or compare step of check `key` may name, in the grader's process: its parameters,
    the reference, the recorded data and the check's seed, plus GPT-2's encoding and a scratch folder
    (entered on `stack`, a contextlib.ExitStack) only where it names them: they take time."""
    import tempfile
    from pathlib import Path

    from autograder.gpt2_for_checks import gpt2_for_checks

    named = inspect.signature(step).parameters
    fixtures = {**params, "ref": ref, "recorded": recorded, "seed": check_seed(seed, key.rsplit("::", 1)[1])}
    if "gpt2" in named:
        fixtures["gpt2"] = stack.enter_context(gpt2_for_checks())
    if "tmp_path" in named:
        fixtures["tmp_path"] = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="course-compare-")))
    return fixtures


def drawn_case(setup: Callable, fixtures: dict[str, Any]) -> bytes:
    """The case `setup` draws with the fixtures it names, as the bytes that cross between steps."""
    return dumps(as_data(call_with(setup, fixtures), "the case"))


def _no_setup() -> None:
    return None


def _param_id(value: Any, function: Callable) -> str:
    """pytest's id of one parameter value, for the values split checks may be parametrized with."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return str(value)
    raise TypeError(f"{function.__qualname__}: split checks take numbers, text, booleans or None as parameters")


def _parametrizations(compare: Callable) -> list[tuple[str, dict[str, Any]]]:
    """The (pytest id suffix, parameters) of each case of the `parametrize` mark on `compare`;
    one case with no parameters when it has none."""
    marks = [mark for mark in getattr(compare, "pytestmark", []) if mark.name == "parametrize"]
    if not marks:
        return [("", {})]
    if len(marks) > 1 or "ids" in marks[0].kwargs or len(marks[0].args) != 2:
        raise TypeError(f"{compare.__qualname__}: a split check takes one parametrize mark, with argnames and values")
    argnames, argvalues = marks[0].args
    names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
    cases = []
    for values in argvalues:
        values = (values,) if len(names) == 1 else tuple(values)
        cases.append((f"[{'-'.join(_param_id(v, compare) for v in values)}]", dict(zip(names, values))))
    return cases


def split(*, produce: Callable, setup: Callable | None = None) -> Callable[[Callable], Callable]:
    """Make `compare` (the decorated test) a split check with the given produce and setup steps."""
    setup = setup or _no_setup

    def decorate(compare: Callable) -> Callable:
        parametrizations = _parametrizations(compare)
        params = frozenset(parametrizations[0][1])
        produce_names = list(inspect.signature(produce).parameters)
        if NOT_FOR_PRODUCE & set(produce_names):
            raise TypeError(f"{produce.__qualname__}: a split check's produce cannot take ref, outputs or seed")
        wanted = [
            *_parameters(setup, SETUP_FIXTURES | params, "setup"),
            *produce_names,
            *_parameters(compare, COMPARE_FIXTURES | params, "compare"),
        ]
        fixtures = list(dict.fromkeys(name for name in wanted if name not in ("case", "outputs")))

        @functools.wraps(compare)
        def check(request, produce_only, explain_failure, **given):
            if produce_only is not None:
                produce_only(request.node, check)
                return
            given["case"] = loads(drawn_case(setup, given))
            given["outputs"] = loads(dumps(as_data(call_with(produce, given))))
            try:
                call_with(compare, given)
            except CheckFailure as failure:
                raise explain_failure(failure, given["outputs"]) from None

        del check.__wrapped__  # pytest would read the fixtures from compare's signature
        engine = ("request", "produce_only", "explain_failure")
        check.__signature__ = inspect.Signature(
            [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY) for name in (*engine, *fixtures)]
        )
        check.setup, check.produce, check.compare = setup, produce, compare
        check.parametrizations = parametrizations
        return check

    return decorate


def is_split(value: Any) -> bool:
    return callable(value) and hasattr(value, "produce")


def split_checks(module) -> dict[str, tuple[Callable, dict[str, Any]]]:
    """The split checks of a check module, one per pytest item: check id -> (check, its parameters)."""
    return {
        check_id(module.__name__, name + suffix): (value, params)
        for name, value in vars(module).items()
        if name.startswith("test_") and is_split(value)
        for suffix, params in value.parametrizations
    }
