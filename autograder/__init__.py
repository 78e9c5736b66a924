"""The course's autograder: load notebooks, run the checks, score and report.

In a chapter notebook, `check("ch02.gpt_dataset")` checks what the running
kernel defines; on the command line, `course check ch02`.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys

__all__ = ["check"]


def check(target: str, namespace: dict | None = None) -> float | None:
    """Check an exercise (`ch02.gpt_dataset`) or a whole chapter (`ch02`) in this kernel.

    Prints one line per check and raises AssertionError when anything falls short
    of full marks. Under `nbgrader autograde` (which sets NBGRADER_EXECUTION) it grades
    as `course grade` does instead: the hidden checks run too where the reference
    solutions are (seed COURSE_GRADE_SEED, default 0), nothing goes to stderr, and it
    returns the points earned, which nbgrader takes as the test cell's partial credit.
    """
    from . import checking, loader, manifest, paths, report
    from .usage import require_grading_material

    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    course = manifest.load()
    exercises = checking.resolve_targets(course, [target])
    chapter = course.chapter(exercises[0].chapter_id)
    submission = loader.from_namespace(namespace, chapter)
    autograding = os.environ.get("NBGRADER_EXECUTION") == "autograde"
    # Where the reference is, an instructor is grading: the hidden checks must be here too.
    hidden = autograding and paths.solution_notebook(chapter.id).exists()
    if hidden:
        require_grading_material([chapter.id], "grading under nbgrader")
    seed = int(os.environ.get("COURSE_GRADE_SEED", "0")) if autograding else 0
    # nbgrader gives no points to a cell that wrote to stderr.
    with contextlib.redirect_stderr(sys.stdout) if autograding else contextlib.nullcontext():
        result = checking.check_submissions(course, {chapter.id: submission}, exercises, hidden=hidden, seed=seed)
        exercise_results = result.chapters[0].exercises
        for ex in exercise_results:
            print("\n".join(report.check_lines(ex)))
    if autograding:
        return round(sum(ex.score for ex in exercise_results), 6)  # above the cell's points nbgrader fails
    failed = [f"{ex.exercise.id}: {ex.message}" for ex in exercise_results if ex.status != "passed"]
    if failed:
        raise AssertionError("\n".join(failed))
    return None
