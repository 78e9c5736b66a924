"""`course fixtures`: record what the public checks compare with, from solutions/, and what the
chapter's catalogued mistakes give on them (`autograder.mistakes`)."""

from __future__ import annotations

from tqdm import tqdm

from .. import manifest, mistakes, paths, recording, selftest
from . import add_command, chapters_with_solutions, require_solutions

EPILOG = """\
examples:
  course fixtures          every chapter that has a recorder
  course fixtures ch02     one chapter
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "fixtures",
        "regenerate the public checks' fixtures from solutions/",
        "Run the reference solutions on the recorded inputs and save the fixtures the public checks compare "
        "against; then run every mutant through the public checks and save the outputs that name its mistake.",
        EPILOG,
    )
    parser.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapter ids (default: all)")
    parser.set_defaults(func=run)


def run(args) -> int:
    require_solutions()
    course = manifest.load()
    chapters = chapters_with_solutions(course, args.chapters)
    for chapter_id in chapters:
        path = recording.write(course, chapter_id)
        print(f"wrote {path.relative_to(paths.course_root())} ({path.stat().st_size / 1024:.1f} KiB)")
        total = len(selftest.mutants(chapter_id))
        with tqdm(total=total, desc=f"mistakes {chapter_id}", unit="mutant", leave=False) as bar:
            path = mistakes.record(course, chapter_id, progress=bar.update)
        print(f"wrote {path.relative_to(paths.course_root())} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0
