"""Where the grader finds the course's files, under the course root (`llmcourse.paths.course_root`)."""

from __future__ import annotations

import os
from pathlib import Path

from llmcourse.paths import MANIFEST_NAME, course_root


def manifest_path() -> Path:
    return course_root() / MANIFEST_NAME


def solutions_dir() -> Path:
    return course_root() / "solutions"


def chapters_dir() -> Path:
    return course_root() / "chapters"


def recorded_file(chapter_id: str) -> Path:
    """The inputs and expected outputs recorded from the reference for a chapter's public checks;
    shipped inside the package."""
    return Path(__file__).resolve().parent / "checks" / "recorded" / f"{chapter_id}.pt"


def public_checks(chapter_id: str) -> Path:
    return Path(__file__).resolve().parent / "checks" / f"test_{chapter_id}.py"


def instructor_dir(chapter_id: str) -> Path:
    """A chapter's instructor-only material (`instructor/chNN/`)."""
    return course_root() / "instructor" / chapter_id


def hidden_checks(chapter_id: str) -> Path:
    return instructor_dir(chapter_id) / "hidden.py"


def student_notebook(chapter_id: str) -> Path:
    return chapters_dir() / chapter_id / f"{chapter_id}.ipynb"


def solution_notebook(chapter_id: str) -> Path:
    return solutions_dir() / chapter_id / f"{chapter_id}.ipynb"


def cache_dir() -> Path:
    """The course's cache folder (XDG_CACHE_HOME, else ~/.cache): what is computed or downloaded
    once per machine, never part of the course."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmcourse"
