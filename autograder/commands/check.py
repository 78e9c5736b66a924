"""`course check`: score notebooks against the public checks."""

from __future__ import annotations

import json
from pathlib import Path

from .. import checking, manifest, mistakes, report
from ..usage import UsageError
from . import add_command, require_solutions

EPILOG = """\
examples:
  course check ch02                                   the chapter in chapters/ch02/ch02.ipynb
  course check ch02.gpt_dataset                       one exercise
  course check ch02 --notebook my_copy.ipynb          another notebook
  course check ch03 ch04 --notebook solutions         chNN/chNN.ipynb under another folder
  course check ch02 --json                            machine-readable result

exit status: 0 every targeted exercise has full marks, 1 otherwise, 2 usage or configuration error
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "check",
        "check notebooks and show points per exercise",
        "Run the checks of chapters or exercises against a notebook and report points.",
        EPILOG,
    )
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET", help="chapter (ch02) or exercise (ch02.gpt_dataset) ids; default: all"
    )
    parser.add_argument(
        "--notebook",
        type=Path,
        help="notebook to check, or a folder holding chNN/chNN.ipynb (default: chapters/chNN/chNN.ipynb)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.add_argument("--verbose", action="store_true", help="full messages and every check")
    parser.add_argument("--hidden", action="store_true", help="also run the hidden checks (needs solutions/)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the hidden checks' random inputs")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.hidden:
        require_solutions("--hidden")
        mistakes.diagnose_hidden_checks()
    course = manifest.load()
    exercises = checking.resolve_targets(course, args.targets)
    if args.notebook is not None and not args.notebook.exists():
        raise UsageError(f"no notebook at {args.notebook}")
    if args.notebook is not None and args.notebook.is_file() and len({ex.chapter_id for ex in exercises}) > 1:
        raise UsageError(
            "--notebook FILE needs targets from a single chapter; for several, name a folder holding chNN/chNN.ipynb"
        )
    result = checking.check_notebooks(course, exercises, args.notebook, hidden=args.hidden, seed=args.seed)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(report.course_report(result, verbose=args.verbose))
    return 0 if result.full_marks else 1
