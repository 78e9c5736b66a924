"""`course grade`: grade a class's submissions, each in its own sandboxed process."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import manifest
from ..grading import batch
from . import add_command, require_solutions

EPILOG = """\
examples:
  course grade submitted --out results                 every student folder in submitted/
  course grade submitted --out results --chapters ch02 only chapter 2
  course grade submitted --out results --resume        finish a run that was interrupted
  course grade submitted --out regrade --seed 1234     the same hidden inputs as the run with seed 1234

SUBMISSIONS holds <student>/chNN/chNN.ipynb (nbgrader's submitted/ folder), <student>/chNN.ipynb
or <student>.ipynb. RESULTS gets gradebook.csv, feedback/<student>.md, gradescope/<student>/results.json,
summary.md, totals.png, and submissions/<student>.json, one record per student, written as each finishes.

exit status: 0 every submission has a result (a submission's own failures are part of its grade),
2 usage or configuration error, 130 interrupted (finished submissions are kept: rerun with --resume)
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "grade",
        "grade a class's submissions (instructors)",
        "Grade every student's notebooks with the public and hidden checks, each submission in its own "
        "sandboxed process, and write a gradebook, feedback and Gradescope results.",
        EPILOG,
    )
    parser.add_argument(
        "submissions", type=Path, metavar="SUBMISSIONS", help="folder with one folder or notebook per student"
    )
    parser.add_argument("--out", type=Path, required=True, metavar="RESULTS", help="folder for the results")
    parser.add_argument(
        "--workers",
        type=int,
        default=batch.default_workers(),
        help="submissions graded at once (default: the number of cores)",
    )
    parser.add_argument(
        "--chapters",
        nargs="+",
        default=[],
        metavar="CHAPTER",
        help="chapters to grade (default: every chapter handed in)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the submissions RESULTS already holds and grade the rest"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the hidden checks' random inputs (default: a random one, printed and recorded)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds each exercise may take (default: course.toml's exercise_timeout_s)",
    )
    parser.add_argument(
        "--no-mistake-names",
        dest="name_mistakes",
        action="store_false",
        help="skip naming, in the hidden checks' feedback, the catalogued mistake a failure matches "
        "(naming computes what the mistakes give on this run's seed: seconds per failing exercise, once)",
    )
    parser.add_argument("--verbose", action="store_true", help="a traceback when the grader itself fails")
    parser.set_defaults(func=run)


def run(args) -> int:
    require_solutions("course grade")
    options = batch.Options(
        submissions=args.submissions,
        out=args.out,
        workers=args.workers,
        chapters=args.chapters,
        resume=args.resume,
        seed=args.seed,
        exercise_timeout_s=args.timeout,
        name_mistakes=args.name_mistakes,
    )
    try:
        outcome = batch.grade_class(manifest.load(), options)
    except KeyboardInterrupt:
        print("course grade: interrupted; the submissions graded so far are kept: rerun with --resume", file=sys.stderr)
        return 130
    kept = f", {outcome.kept} kept from before" if outcome.kept else ""
    print(
        f"graded {outcome.graded} submissions{kept} in {outcome.seconds:.0f} s; seed {outcome.seed}; sandbox: {outcome.sandbox}"
    )
    for record in outcome.errors:
        print(f"  {record['student']}: {record['message']}")
    print(f"results in {options.out}: gradebook.csv, summary.md, totals.png, feedback/, gradescope/")
    return 0
