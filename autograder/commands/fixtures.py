"""`course fixtures`: regenerate the public checks' recorded fixtures from solutions/."""
from __future__ import annotations

import argparse

from .. import fixtures, manifest, paths
from ..checking import resolve_targets

EPILOG = """\
examples:
  course fixtures          every chapter that has a recorder
  course fixtures ch02     one chapter
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fixtures",
        help="regenerate the public checks' fixtures from solutions/",
        description="Run the reference solutions on the recorded inputs and save the fixtures the public checks compare against.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapter ids (default: all)")
    parser.set_defaults(func=run)


def run(args) -> int:
    course = manifest.load()
    resolve_targets(course, args.chapters)
    chapters = args.chapters or [c.id for c in course.chapters if paths.solution_notebook(c.id).exists()]
    for chapter_id in chapters:
        path = fixtures.write(course, chapter_id)
        print(f"wrote {path.relative_to(paths.course_root())} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0
