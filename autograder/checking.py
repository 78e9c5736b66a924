"""Check notebooks or a live kernel: targets -> loaded submissions -> checks -> scores."""

from __future__ import annotations

from pathlib import Path

from . import loader, paths
from .manifest import Course, Exercise
from .runner import run_checks
from .scoring import ChapterResult, CourseResult, score_chapter
from .usage import UsageError


def resolve_targets(course: Course, targets: list[str]) -> list[Exercise]:
    """Exercises named by chapter ids (`ch02`) or exercise ids (`ch02.gpt_dataset`); all when empty."""
    if not targets:
        return course.exercises()
    chosen: list[Exercise] = []
    for target in targets:
        if "." in target:
            try:
                found = [course.exercise(target)]
            except KeyError:
                known = ", ".join(ex.id for ex in course.exercises())
                raise UsageError(f"unknown exercise '{target}'; the course has: {known}") from None
        else:
            try:
                found = list(course.chapter(target).exercises)
            except KeyError:
                known = ", ".join(ch.id for ch in course.chapters)
                raise UsageError(f"unknown chapter '{target}'; the course has: {known}") from None
        chosen += [ex for ex in found if ex not in chosen]
    return chosen


def _by_chapter(course: Course, exercises: list[Exercise]) -> dict[str, list[Exercise]]:
    grouped: dict[str, list[Exercise]] = {}
    for chapter in course.chapters:
        picked = [ex for ex in exercises if ex.chapter_id == chapter.id]
        if picked:
            grouped[chapter.id] = picked
    return grouped


def with_uses(course: Course, exercises: list[Exercise]) -> list[Exercise]:
    """`exercises` plus every exercise they build on (`Exercise.uses`, transitively)."""
    chosen = list(exercises)
    for ex in chosen:  # grows while it is walked
        chosen += [course.exercise(used) for used in ex.uses if course.exercise(used) not in chosen]
    return chosen


def check_submissions(
    course: Course,
    submissions: dict[str, loader.LoadedNotebook],
    exercises: list[Exercise],
    *,
    hidden: bool = False,
    seed: int = 0,
) -> CourseResult:
    """Run the checks of `exercises` (all from chapters in `submissions`) and score them.

    The checks of the exercises they use run too, so that a failure can name a
    failing building block ("your LayerNorm also fails its checks"). Hidden checks
    load the reference from solutions/.
    """
    checks = run_checks(course, submissions, with_uses(course, exercises), hidden=hidden, seed=seed)
    chapters: list[ChapterResult] = []
    for chapter_id, picked in _by_chapter(course, exercises).items():
        chapters.append(score_chapter(course.chapter(chapter_id), picked, checks))
    return CourseResult(chapters)


def check_notebooks(
    course: Course,
    exercises: list[Exercise],
    notebook: Path | None = None,
    *,
    hidden: bool = False,
    seed: int = 0,
) -> CourseResult:
    """Check each targeted chapter's notebook: `notebook` (a file, or a folder holding
    `chNN/chNN.ipynb`), by default `chapters/chNN/chNN.ipynb`."""
    submissions = {}
    for chapter_id in _by_chapter(course, exercises):
        if notebook is None:
            path = paths.student_notebook(chapter_id)
        elif notebook.is_dir():
            path = notebook / chapter_id / f"{chapter_id}.ipynb"
        else:
            path = notebook
        submissions[chapter_id] = loader.load_notebook(path, course.chapter(chapter_id))
    return check_submissions(course, submissions, exercises, hidden=hidden, seed=seed)
