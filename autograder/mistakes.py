"""Feedback that names the mistake.

`course fixtures` runs every catalogued mistake of a chapter (its mutants) through the
produce steps of the public checks, on the same inputs the checks give a submission, and
records each mistake's outputs where they differ from the reference's: for check id ->
[(description, outputs)], in `autograder/checks/recorded/chNN.mistakes.pt`. That file holds
data and descriptions, never code, so a student release names mistakes too.

The hidden checks draw fresh inputs from each run's seed, so nothing can be recorded for
them ahead: where an instructor grades (`course grade`, `course check --hidden`), `live`
computes the exercise's mistakes' outputs on that seed's cases in a separate process
(`autograder.grading.diagnosis`; no mutant code enters the process that runs the
submission) and caches them on disk by seed and by the digest of the files they come from.

When a check fails, `explained` compares the outputs the submission produced with the
recorded (or live) ones; where a mistake's outputs match them (tensors within 1e-5, numbers
within a relative 1e-6, the rest equal), the failure message names it. A check that passes
is never diagnosed, and a failure that matches nothing keeps its message.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import math
import re
import subprocess
import sys
import threading
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


def produced_by(
    course: Course, chapter_id: str, cells: list, exercise_ids: list[str], cases: dict, *, hidden: bool = False
) -> dict[str, Any]:
    """The outputs of the checks of `exercise_ids` (public, and hidden with `hidden`) on the
    notebook `cells`, by check id."""
    chapter = course.chapter(chapter_id)
    submission = loader.load_cells(cells, chapter, "a catalogued mistake")
    produced: dict[str, bytes] = {}
    exercises = [course.exercise(exercise_id) for exercise_id in exercise_ids]
    try:
        runner.run_checks(course, {chapter_id: submission}, exercises, hidden=hidden, cases=cases, produced=produced)
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
    expected = produced_by(course, chapter_id, reference_cells, [ex.id for ex in chapter.exercises], cases)
    found: dict[str, list[tuple[str, Any]]] = {}
    for mutant in mutants(chapter_id):
        cells = mutated_notebook(course, mutant)["cells"]
        for key, outputs in produced_by(course, chapter_id, cells, [mutant.exercise_id], cases).items():
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


# What joins a failure's message and the description of the mistake its outputs match.
NAMES_THE_MISTAKE = ". Your outputs here are exactly what this mistake gives: "
# Mistakes named at most in one message, when several give the same outputs.
MAX_NAMED = 3
# Seconds the process computing an exercise's mistakes' outputs on the hidden checks may take.
LIVE_TIMEOUT_S = 180


def _sources_digest(chapter_id: str) -> str:
    """A digest of what the mistakes' outputs on the hidden checks come from."""
    digest = hashlib.sha256()
    files = [
        paths.solution_notebook(chapter_id),
        paths.public_checks(chapter_id),
        paths.hidden_checks(chapter_id),
        paths.instructor_dir(chapter_id) / "mutants.py",
        *sorted(Path(__file__).parent.glob("*.py")),
    ]
    for file in files:
        digest.update(file.read_bytes() if file.exists() else b"-")
    return digest.hexdigest()[:16]


_diagnose_hidden = False


def diagnose_hidden_checks() -> None:
    """Name mistakes on the hidden checks too, in this process's local checks (`course check --hidden`).
    The grader always does; the self-test does not, since its mutants come from the same catalogue."""
    global _diagnose_hidden
    _diagnose_hidden = True


def hidden_checks_diagnosed() -> bool:
    return _diagnose_hidden


_live_locks: collections.defaultdict[tuple, threading.Lock] = collections.defaultdict(threading.Lock)


def live(chapter_id: str, exercise_id: str, seed: int) -> dict[str, list[tuple[str, Any]]]:
    """The outputs of `exercise_id`'s mistakes on the hidden checks' cases for `seed`, where they
    differ from the reference's, by check id; empty where they cannot be computed here. Threads
    asking for the same ones wait for one computation."""
    with _live_locks[chapter_id, exercise_id, seed]:
        return _live(chapter_id, exercise_id, seed)


@cache
def _live(chapter_id: str, exercise_id: str, seed: int) -> dict[str, list[tuple[str, Any]]]:
    import torch

    if not (paths.hidden_checks(chapter_id).exists() and paths.solution_notebook(chapter_id).exists()):
        return {}
    path = paths.cache_dir() / "mistakes" / f"{exercise_id}-seed{seed}-{_sources_digest(chapter_id)}.pt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "autograder.grading.diagnosis", exercise_id, str(seed), str(path)]
        try:
            subprocess.run(command, cwd=paths.course_root(), capture_output=True, timeout=LIVE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return {}
    try:
        return torch.load(path, weights_only=True)
    except (OSError, RuntimeError):
        return {}


def named(key: str, outputs: Any, exercise_id: str | None = None, seed: int | None = None) -> str | None:
    """The descriptions of the catalogued mistakes whose outputs on check `key` match `outputs`, if
    any (several give the same outputs on some checks): recorded for public checks; for a hidden
    check, given its exercise and the run's seed, live."""
    match = re.search(r"ch\d\d", key.split("::")[0])
    if match is None:
        return None
    if key.startswith("instructor."):
        known = live(match.group(0), exercise_id, seed) if exercise_id and seed is not None else {}
    else:
        known = read(match.group(0))
    matching = list(dict.fromkeys(description for description, theirs in known.get(key, []) if same(outputs, theirs)))
    if len(matching) > MAX_NAMED:
        matching = [*matching[:MAX_NAMED], f"{len(matching) - MAX_NAMED} more"]
    return "; or ".join(matching) or None


def explained(
    failure: CheckFailure, key: str, outputs: Any, exercise_id: str | None = None, seed: int | None = None
) -> CheckFailure:
    """`failure` with the mistake its outputs match named, or `failure` itself."""
    description = named(key, outputs, exercise_id, seed)
    if description is None:
        return failure
    return CheckFailure(f"{failure}{NAMES_THE_MISTAKE}{description}")
