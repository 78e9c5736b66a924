"""The `course` command: one sub-command per module in `autograder.commands`."""

from __future__ import annotations

import argparse
import sys

from llmcourse.data import DataManifestError

from .manifest import ManifestError
from .usage import UsageError

COMMANDS = ("check", "progress", "release", "fixtures", "selftest", "data", "generate", "grade", "gradescope")

DESCRIPTION = """\
Build a large language model from scratch: check your chapter notebooks,
and (for instructors and course developers) release, regenerate and self-test.

examples:
  course check ch02                      check chapters/ch02/ch02.ipynb
  course check ch02.gpt_dataset          check one exercise
  course progress                        all chapters at a glance
  course data fetch                      download the data files the chapters use
  course grade submitted --out results   grade a class (instructors)
  course gradescope --out autograder.zip a Gradescope autograder bundle (instructors)
  course generate --model gpt2-124m "Every effort moves you"
                                         continue a prompt with OpenAI's GPT-2
"""


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="course", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"autograder.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except (UsageError, ManifestError, DataManifestError) as exc:
        print(f"course {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback wall
        if getattr(args, "verbose", False):
            raise
        print(f"course {args.command}: {type(exc).__name__}: {exc} (add --verbose for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
