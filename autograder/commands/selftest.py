"""`course selftest`: check the checks against the reference, the stubs, mutants and alternatives."""

from __future__ import annotations

from tqdm import tqdm

from .. import manifest, selftest
from ..usage import require_check_data, require_grading_material
from . import add_command, chapters_with_solutions, require_solutions

EPILOG = """\
examples:
  course selftest              every chapter that has solutions
  course selftest ch02 -v      one chapter, a line per mutant and alternative
  course selftest ch02 --seed 5  the hidden checks on the inputs grading with --seed 5 draws

exit status: 0 only if the reference gets full marks, the stubs zero, every mutant
loses points with a message and every alternative gets full marks; a mutant whose
message names its own mistake (from the outputs `course fixtures` records) counts as named
"""


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "selftest",
        "check the checks (reference, stubs, mutants, alternatives)",
        "Prove the checks: full marks for solutions/, zero for chapters/, mutants killed, alternatives accepted.",
        EPILOG,
    )
    parser.add_argument(
        "chapters", nargs="*", metavar="CHAPTER", help="chapter ids (default: every chapter with a solution)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per mutant and alternative")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the hidden checks' inputs (default 0); every seed must pass"
    )
    parser.set_defaults(func=run)


def run(args) -> int:
    require_solutions()
    course = manifest.load()
    chapters = chapters_with_solutions(course, args.chapters)
    require_grading_material(chapters, "the self-test")
    require_check_data(course, chapters, "the self-test")
    all_ok, mutants, killed, named = True, 0, 0, 0
    for chapter_id in chapters:
        with tqdm(total=selftest.steps(chapter_id), desc=f"selftest {chapter_id}", unit="step", leave=False) as bar:
            report = selftest.selftest_chapter(course, chapter_id, progress=bar.update, seed=args.seed)
        mutants, killed, named = mutants + report.mutants, killed + report.killed, named + report.named
        all_ok &= report.ok
        print(
            f"{chapter_id}: {report.killed}/{report.mutants} mutants killed, {report.named} of them with a message "
            f"naming the mistake, {'OK' if report.ok else 'FAILED'}"
        )
        if args.verbose:
            print("\n".join(report.lines))
        for problem in report.problems:
            print(f"  problem: {problem}")
    rate = 100.0 * killed / mutants if mutants else 0.0
    print(f"mutant kill rate: {killed}/{mutants} ({rate:.0f}%); the mistake named for {named}")
    return 0 if all_ok else 1
