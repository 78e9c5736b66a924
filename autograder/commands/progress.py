"""`course progress`: every chapter of the student's notebooks at a glance."""

from __future__ import annotations

from .. import checking, manifest, paths
from . import add_command

EPILOG = """\
example:
  course progress        one line per chapter: points, exercises done, a bar
"""
BAR_WIDTH = 20


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "progress",
        "all chapters at a glance",
        "Check every chapter notebook in chapters/ and show one line per chapter.",
        EPILOG,
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    course = manifest.load()
    total = best = 0.0
    for chapter in course.chapters:
        best += chapter.max_score
        if not paths.student_notebook(chapter.id).exists():
            print(f"{chapter.id}  {chapter.title:<45} (no notebook in chapters/{chapter.id})")
            continue
        result = checking.check_notebooks(course, list(chapter.exercises)).chapters[0]
        total += result.score
        done = sum(ex.status == "passed" for ex in result.exercises)
        filled = round(BAR_WIDTH * result.score / result.max_score)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        print(
            f"{chapter.id}  {chapter.title:<45} {bar} {result.score:g}/{result.max_score:g} points, "
            f"{done}/{len(result.exercises)} exercises done"
        )
    print(f"\ntotal {total:g}/{best:g} points")
    return 0
