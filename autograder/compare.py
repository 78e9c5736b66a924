"""Assertions for checks, with messages that say what differs, where and by how much.

A message names the first mismatching index and the values there, or the max
abs difference; it never prints a whole expected answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class CheckFailure(AssertionError):
    """A check found wrong behaviour; the message is shown to the student."""


def fail(message: str) -> None:
    raise CheckFailure(message)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailure(message)


def _type_name(value: Any) -> str:
    return type(value).__name__


def expect_type(value: Any, kinds: type | tuple[type, ...], what: str) -> None:
    """`what` should be an instance of `kinds`."""
    if not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))
        fail(f"{what} should be a {names}; got {_type_name(value)}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def expect_sequence_equal(actual: Sequence, expected: Sequence, what: str) -> None:
    """Element-wise equality, reporting the first differing position."""
    actual, expected = list(actual), list(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a != e:
            fail(f"{what}: first difference at index {i}: got {_short(a)}, expected {_short(e)}")
    if len(actual) != len(expected):
        fail(
            f"{what}: got {len(actual)} items, expected {len(expected)} (the first {min(len(actual), len(expected))} agree)"
        )


def expect_text_equal(actual: Any, expected: str, what: str) -> None:
    """String equality, reporting the first differing character with a little context."""
    expect_type(actual, str, what)
    if actual == expected:
        return
    i = next((k for k, (a, e) in enumerate(zip(actual, expected)) if a != e), min(len(actual), len(expected)))
    start = max(i - 12, 0)
    fail(
        f"{what}: first difference at character {i}, after {actual[start:i]!r}: "
        f"got {actual[i : i + 3]!r}, expected {expected[i : i + 3]!r}"
    )


def expect_mapping_equal(actual: dict, expected: dict, what: str) -> None:
    """Same keys and values, reporting one missing, extra or differing key."""
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    if missing:
        fail(f"{what}: {len(missing)} expected keys missing, e.g. {_short(missing[0])}")
    if extra:
        fail(f"{what}: {len(extra)} unexpected keys, e.g. {_short(extra[0])}")
    for key in expected:
        if actual[key] != expected[key]:
            fail(f"{what}[{_short(key)}]: got {_short(actual[key])}, expected {_short(expected[key])}")


def expect_list(values: Any, count: int, what: str) -> None:
    """`values` is a list of `count` items (a split check's outputs are not trusted to have its case's shape)."""
    expect(isinstance(values, list) and len(values) == count, f"{what} should hold {count} results")


def expect_tensor(value: Any, what: str, shape: tuple[int, ...] | None = None, dtype=None) -> None:
    """`value` is a torch tensor with the given shape and dtype."""
    import torch

    expect_type(value, torch.Tensor, what)
    if shape is not None and tuple(value.shape) != tuple(shape):
        fail(f"{what} has shape {tuple(value.shape)}; expected {tuple(shape)}")
    if dtype is not None and value.dtype != dtype:
        fail(f"{what} has dtype {value.dtype}; expected {dtype}")


def expect_close(actual: Any, expected, what: str, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Tensors equal within tolerance: reports shape, the first bad index and the max abs diff."""
    import torch

    expect_tensor(actual, what, shape=tuple(expected.shape))
    actual_f, expected_f = actual.detach().double(), expected.detach().double()
    bad = ~torch.isclose(actual_f, expected_f, atol=atol, rtol=rtol, equal_nan=True)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        max_diff = (actual_f - expected_f).abs().nan_to_num(float("inf")).max().item()
        fail(
            f"{what} differs from the expected values at {int(bad.sum())} of {bad.numel()} positions; "
            f"first at index {index}: got {actual_f[index].item():.6g}, expected {expected_f[index].item():.6g}; "
            f"max abs diff {max_diff:.3g} (tolerance {atol:g})"
        )


def expect_equal_tensor(actual: Any, expected, what: str) -> None:
    """Exact equality of integer tensors (token ids), reporting the first differing index."""
    expect_tensor(actual, what, shape=tuple(expected.shape))
    bad = actual != expected
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        fail(
            f"{what}: first difference at index {index}: got {actual[index].item()}, expected {expected[index].item()}"
        )
    if actual.dtype != expected.dtype and not (actual.dtype.is_floating_point or expected.dtype.is_floating_point):
        fail(f"{what} has dtype {actual.dtype}; expected {expected.dtype}")


def expect_close_or_name_the_mistake(
    actual, expected, what: str, who: str, mistakes, atol: float = 1e-5, mistake_atol: float | None = None
) -> None:
    """expect_close(actual, expected, what), except that an `actual` matching one of `mistakes`
    ((description, output it gives) pairs, made only once the output is wrong) fails with a
    message naming it: `who` and the description."""
    import torch

    if not torch.allclose(actual, expected, atol=atol):
        for mistake, wrong in mistakes:
            if torch.allclose(actual, wrong, atol=mistake_atol or atol):
                fail(f"{who} {mistake}")
    expect_close(actual, expected, what, atol=atol)


def expect_number(value: Any, what: str) -> float:
    """`value` (a Python number or a one-element tensor) as a float; fails naming `what` otherwise."""
    import torch

    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"{what} should be a single number; got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    expect(isinstance(value, (int, float)), f"{what} should be a number; got {type(value).__name__}")
    return float(value)
