"""`course gradescope`: build a Gradescope autograder bundle (a zip to upload as the assignment's autograder)."""

from __future__ import annotations

from pathlib import Path

from .. import manifest
from ..grading import gradescope_bundle
from . import add_command, chapters_with_solutions, require_solutions

EPILOG = """\
examples:
  course gradescope --out autograder.zip                 every chapter with a reference notebook
  course gradescope --out ch02.zip --chapters ch02       one chapter's assignment

The zip holds setup.sh (installs the course and fetches the chapters' data), run_autograder
(grades the chNN.ipynb notebooks in /autograder/submission/ like `course grade` and writes
/autograder/results/results.json), and the course's source with its hidden checks and the
chapters' reference notebooks: upload it to your Gradescope account, never hand it to students.
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "gradescope",
        "build a Gradescope autograder zip (instructors)",
        "Build a Gradescope autograder bundle that grades a submission's chapter notebooks with the "
        "public and hidden checks, in a sandboxed process, exactly as `course grade` does.",
        EPILOG,
    )
    parser.add_argument("--out", type=Path, required=True, metavar="ZIP", help="the zip file to write")
    parser.add_argument(
        "--chapters",
        nargs="+",
        default=[],
        metavar="CHAPTER",
        help="chapters the assignment grades (default: every chapter with a reference notebook)",
    )
    parser.add_argument("--verbose", action="store_true", help="a traceback when building fails")
    parser.set_defaults(func=run)


def run(args) -> int:
    require_solutions("course gradescope")
    chapters = chapters_with_solutions(manifest.load(), args.chapters)
    out = gradescope_bundle.build(args.out, chapters)
    print(f"wrote the Gradescope autograder for {', '.join(chapters)} to {out}")
    print("it holds the reference solutions: upload it to Gradescope, never share it with students")
    return 0
