"""A submission that tampers with the checks from inside its own process: a trace function that
rewrites the local variables of every check and comparison it sees (`PyFrame_LocalsToFast`), and
`ctypes` writes that copy the expected tensor over the submission's. Under `course grade` every
verdict is decided in the grader's process, so no exercise scores more than the same code without
the trick; in a student's own `course check`, where everything runs in one process, it does."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from autograder import loader, manifest, paths
from autograder.selftest import mutant_source, mutants

ROOT = paths.course_root()

TRICK = """
import ctypes as _ctypes, sys as _sys, threading as _threading
def _tamper(frame, event, arg):
    name = frame.f_code.co_name
    if event != "call" or not name.startswith(("test_", "expect", "_expect", "compare", "decide", "check")):
        return None
    names = frame.f_locals
    if "condition" in names:
        names["condition"] = True
    if "shape" in names:
        names["shape"] = None
    if "count" in names and isinstance(names.get("values"), list):
        names["count"] = len(names["values"])
    actual, expected = names.get("actual"), names.get("expected")
    try:
        import torch as _torch
        same = (
            isinstance(actual, _torch.Tensor) and isinstance(expected, _torch.Tensor)
            and actual.shape == expected.shape and actual.dtype == expected.dtype
            and actual.is_contiguous() and expected.is_contiguous()
        )
        if same:
            _ctypes.memmove(actual.data_ptr(), expected.data_ptr(), actual.numel() * actual.element_size())
        elif expected is not None and "actual" in names:
            names["actual"] = expected
    except Exception:
        pass
    _ctypes.pythonapi.PyFrame_LocalsToFast(_ctypes.py_object(frame), _ctypes.c_int(0))
    return None
_sys.settrace(_tamper)
_threading.settrace(_tamper)
"""


def mistaken_notebook(chapter_id: str, trick: bool) -> dict:
    """The chapter's reference with each exercise's first mutant applied; `trick` appended to the
    first exercise cell when asked."""
    course = manifest.load()
    chapter = course.chapter(chapter_id)
    notebook = loader.read_notebook(paths.solution_notebook(chapter_id))
    first_mutant = {}
    for mutant in mutants(chapter_id):
        first_mutant.setdefault(mutant.exercise_id, mutant)
    for index, exercise in enumerate(chapter.exercises):
        source = loader.cell_source(notebook["cells"][loader.cell_index(notebook["cells"], chapter, exercise.id)])
        if exercise.id in first_mutant:
            source = mutant_source(source, first_mutant[exercise.id])
        if trick and index == 0:
            source += TRICK
        notebook["cells"] = loader.with_cell_source(notebook["cells"], chapter, exercise.id, source)
    return notebook


def chapters() -> list[str]:
    return [ch.id for ch in manifest.load().chapters if paths.solution_notebook(ch.id).exists()]


def course(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def local_points(notebook_path) -> dict[str, float]:
    done = course("check", "ch03", "--notebook", notebook_path, "--json")
    return {ex["id"]: ex["score"] for ex in json.loads(done.stdout)["chapters"][0]["exercises"]}


def test_the_trick_raises_a_local_check_where_everything_runs_in_one_process(tmp_path):
    """The trick is real: in `course check`, which runs the checks in the notebook's process, it gains points."""
    plain, tricked = tmp_path / "plain.ipynb", tmp_path / "tricked.ipynb"
    plain.write_text(json.dumps(mistaken_notebook("ch03", trick=False)), encoding="utf-8")
    tricked.write_text(json.dumps(mistaken_notebook("ch03", trick=True)), encoding="utf-8")
    assert sum(local_points(tricked).values()) > sum(local_points(plain).values())


@pytest.mark.skipif(not paths.solutions_dir().is_dir(), reason="needs solutions/")
def test_tampering_with_the_checks_frames_gains_no_points_under_course_grade(tmp_path):
    """Every chapter: each exercise of the tricked notebook scores no more than without the trick."""
    for chapter_id in chapters():
        for student, trick in (("plain", False), ("tricked", True)):
            path = tmp_path / "class" / student / chapter_id / f"{chapter_id}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(mistaken_notebook(chapter_id, trick)), encoding="utf-8")
    done = course(
        "grade", tmp_path / "class", "--out", tmp_path / "out", "--seed", 7, "--workers", 2, "--no-mistake-names"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        book = {row["student"]: row for row in csv.DictReader(handle)}
    exercises = [ex.id for chapter_id in chapters() for ex in manifest.load().chapter(chapter_id).exercises]
    gained = {ex: (book["plain"][ex], book["tricked"][ex]) for ex in exercises}
    assert not {ex: pair for ex, pair in gained.items() if float(pair[1]) > float(pair[0])}, gained
