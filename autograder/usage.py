"""Errors in what the command line asked for, and the checks of its prerequisites; the CLI exits with 2."""

from __future__ import annotations

from .instructor_only import missing_for_grading
from .manifest import Course


class UsageError(Exception):
    """A target or option the course does not know, or something a command needs that is not here."""


def require_check_data(course: Course, chapter_ids: list[str], what: str) -> None:
    """Refuse to start `what` when a data file the checks of `chapter_ids` need is not fetched:
    a check that skips would give its points away. Names the command that fetches them."""
    from llmcourse.data import is_available

    needed = sorted({name for chapter_id in chapter_ids for name in course.chapter(chapter_id).check_data})
    missing = [name for name in needed if not is_available(name)]
    if missing:
        raise UsageError(
            f"{what} needs data its checks use and that is not here: {', '.join(missing)}; "
            f"run `course data fetch {' '.join(missing)}` first (a check without its data would be skipped "
            "and its points given away)"
        )


def require_grading_material(chapter_ids: list[str], what: str) -> None:
    """Refuse to start `what` when a reference notebook or hidden checks of `chapter_ids` are not here:
    grading without them would skip the hidden checks."""
    missing = missing_for_grading(chapter_ids)
    if missing:
        raise UsageError(
            f"{what} needs the instructor's material, and this course folder lacks "
            f"{', '.join(map(str, missing))}: run it in the course repository (with solutions/ and instructor/)"
        )
