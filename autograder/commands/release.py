"""`course release`: regenerate the student notebooks from solutions/ with nbgrader."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import manifest, release
from . import add_command, chapters_with_solutions, require_solutions

EPILOG = """\
examples:
  course release                 regenerate chapters/ from solutions/
  course release ch02            one chapter
  course release --check         exit 1 and name the files when chapters/ is out of date
  course release --out ../class  write a student copy of the course (no solutions, no hidden checks) to ../class
  course release --out ../class --chapters ch02 ch03
                                 a student copy with chapters 2 and 3 only (no reference code of later chapters)
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "release",
        "regenerate chapters/ from solutions/ (nbgrader generate_assignment)",
        "Generate the student notebooks (stubs) in chapters/ from the reference notebooks in solutions/.",
        EPILOG,
    )
    parser.add_argument(
        "chapters", nargs="*", metavar="CHAPTER", help="chapter ids (default: every chapter with a solution)"
    )
    parser.add_argument(
        "--chapters",
        nargs="+",
        dest="listed_chapters",
        default=[],
        metavar="CHAPTER",
        help="the same as the CHAPTER arguments, as `course grade` spells it",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="only compare; exit 1 naming the files that differ")
    mode.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write a student release (chapters, autograder with public checks only) to DIR, a new or empty folder",
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    require_solutions()
    course = manifest.load()
    chapters = chapters_with_solutions(course, args.chapters + args.listed_chapters)
    try:
        if args.out is not None:
            print(
                f"wrote a student release of {', '.join(chapters)} to {release.write_student_release(args.out, chapters)}"
            )
            return 0
        if args.check:
            stale = [name for ch in chapters for name in release.differences(ch)]
            if stale:
                print("chapters/ differs from what `course release` generates:", *stale, sep="\n  ")
                return 1
            print("chapters/ is up to date with solutions/")
            return 0
        for chapter_id in chapters:
            print(f"released {release.release(chapter_id)}")
    except release.ReleaseTargetError as exc:
        print(f"course release: {exc}", file=sys.stderr)
        return 2
    except release.ReleaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0
