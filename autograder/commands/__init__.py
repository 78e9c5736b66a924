"""The `course` sub-commands, one module each; every module has `register(subparsers)`."""

from __future__ import annotations

import argparse

from .. import paths
from ..manifest import Course
from ..usage import UsageError


def add_command(subparsers, name: str, summary: str, description: str, epilog: str) -> argparse.ArgumentParser:
    """A sub-command parser whose --help shows the description and the examples as written."""
    return subparsers.add_parser(
        name, help=summary, description=description, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def chapters_with_solutions(course: Course, requested: list[str]) -> list[str]:
    """The requested chapter ids (checked against the manifest), or every chapter that has a reference notebook."""
    known = [ch.id for ch in course.chapters]
    for chapter_id in requested:
        if chapter_id not in known:
            raise UsageError(f"unknown chapter '{chapter_id}'; the course has: {', '.join(known)}")
    return requested or [c for c in known if paths.solution_notebook(c).exists()]


def require_solutions(what: str = "this command") -> None:
    """Stop with a usage error when solutions/ is not here, as in a student release."""
    if not paths.solutions_dir().is_dir():
        raise UsageError(
            f"{what} needs the reference notebooks in solutions/, and {paths.course_root()} has none "
            "(a student release leaves them out); run it in the full course repository"
        )
