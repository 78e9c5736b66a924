"""The course's autograder: load notebooks, run the checks, score and report.

In a chapter notebook, `check("ch02.gpt_dataset")` checks what the running
kernel defines; on the command line, `course check ch02`.
"""
from __future__ import annotations

import inspect

from .data import DataError, configure_tiktoken_cache

__all__ = ["check"]

try:
    configure_tiktoken_cache()
except DataError:
    pass  # no usable data manifest here; `course data` reports it when the data is asked for


def check(target: str, namespace: dict | None = None) -> None:
    """Check an exercise (`ch02.gpt_dataset`) or a whole chapter (`ch02`) in this kernel.

    Prints one line per check and raises AssertionError when anything falls short
    of full marks, so that an nbgrader test cell scores it.
    """
    from . import checking, loader, manifest, report

    if namespace is None:
        namespace = inspect.currentframe().f_back.f_globals
    course = manifest.load()
    exercises = checking.resolve_targets(course, [target])
    chapter = course.chapter(exercises[0].chapter_id)
    submission = loader.from_namespace(namespace, chapter)
    result = checking.check_submissions(course, {chapter.id: submission}, exercises)
    failed = []
    for ex in result.chapters[0].exercises:
        print("\n".join(report.check_lines(ex)))
        if ex.status != "passed":
            failed.append(f"{ex.exercise.id}: {ex.message}")
    if failed:
        raise AssertionError("\n".join(failed))
