"""Feedback that names the mistake.

`course fixtures` runs every catalogued mistake of a chapter (its mutants) through the
produce steps of the public checks, on the same inputs the checks give a submission, and
records each mistake's outputs where they differ from the reference's: for check id ->
[(description, outputs)], in `autograder/checks/recorded/chNN.mistakes.pt`. That file holds
data and descriptions, never code, so a student release names mistakes too.

When a check fails, `explained` compares the outputs the submission produced with the
recorded ones; where a mistake's outputs match them (tensors within 1e-5, numbers within a
relative 1e-6, the rest equal), the failure message names it. A check that passes is never
diagnosed, and a failure that matches nothing keeps its message.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
from functools import cache
from pathlib import Path
from typing import Any

from . import loader, paths, recording, runner, split
from .compare import CheckFailure
from .manifest import Course


def mistakes_file(chapter_id: str) -> Path:
    return paths.recorded_file(chapter_id).with_suffix(".mistakes.pt")


def same(a: Any, b: Any) -> bool:
    """Whether two outputs (`split.as_data` data) are the same, tensors and floats within rounding."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or a.shape != b.shape:
            return False
        if a.dtype.is_floating_point != b.dtype.is_floating_point or (a.dtype == torch.bool) != (b.dtype == torch.bool):
            return False
        return bool(torch.allclose(a.double(), b.double(), atol=1e-5, rtol=1e-5, equal_nan=True))
    if isinstance(a, float) or isinstance(b, float):
        both_numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
        return both_numbers and (math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def _public_cases(chapter_id: str) -> dict[str, bytes]:
    """The case of every public check of the chapter (setups draw from seed 0)."""
    module = importlib.import_module(f"autograder.checks.test_{chapter_id}")
    cases = {}
    with contextlib.ExitStack() as stack:
        for key, (check, params) in split.split_checks(module).items():
            fixtures = split.grader_fixtures(
                check.setup, key, params, stack, seed=0, recorded=recording.read(chapter_id)
            )
            cases[key] = split.drawn_case(check.setup, fixtures)
    return cases


def _produced(course: Course, chapter_id: str, cells: list, exercise_ids: list[str], cases: dict) -> dict[str, Any]:
    """The outputs of the public checks of `exercise_ids` on the notebook `cells`, by check id."""
    chapter = course.chapter(chapter_id)
    submission = loader.load_cells(cells, chapter, "a catalogued mistake")
    produced: dict[str, bytes] = {}
    exercises = [course.exercise(exercise_id) for exercise_id in exercise_ids]
    try:
        runner.run_checks(course, {chapter_id: submission}, exercises, cases=cases, produced=produced)
    finally:
        loader.unload(submission)
    return {key: split.loads(blob) for key, blob in produced.items()}


def record(course: Course, chapter_id: str, progress=None) -> Path:
    """Record the outputs of the chapter's mutants on its public checks (see the module's docstring)."""
    import torch

    from .selftest import mutants, mutated_notebook

    chapter = course.chapter(chapter_id)
    cases = _public_cases(chapter_id)
    reference_cells = loader.read_notebook(paths.solution_notebook(chapter_id))["cells"]
    expected = _produced(course, chapter_id, reference_cells, [ex.id for ex in chapter.exercises], cases)
    found: dict[str, list[tuple[str, Any]]] = {}
    for mutant in mutants(chapter_id):
        cells = mutated_notebook(course, mutant)["cells"]
        for key, outputs in _produced(course, chapter_id, cells, [mutant.exercise_id], cases).items():
            if key in expected and not same(outputs, expected[key]):
                found.setdefault(key, []).append((mutant.description, outputs))
        if progress:
            progress()
    path = mistakes_file(chapter_id)
    torch.save(found, path)
    read.cache_clear()
    return path


@cache
def read(chapter_id: str) -> dict[str, list[tuple[str, Any]]]:
    """The chapter's recorded mistakes' outputs, by check id; empty where none were recorded."""
    import torch

    path = mistakes_file(chapter_id)
    return torch.load(path, weights_only=True) if path.exists() else {}


def named(key: str, outputs: Any) -> str | None:
    """The description of the recorded mistake whose outputs on check `key` match `outputs`, if any."""
    match = re.search(r"ch\d\d", key.split("::")[0])
    if match is None:
        return None
    return next(
        (description for description, theirs in read(match.group(0)).get(key, []) if same(outputs, theirs)), None
    )


def explained(failure: CheckFailure, key: str, outputs: Any) -> CheckFailure:
    """`failure` with the mistake its outputs match named, or `failure` itself."""
    description = named(key, outputs)
    if description is None:
        return failure
    return CheckFailure(f"{failure}. Your outputs here are exactly what this mistake gives: {description}")
