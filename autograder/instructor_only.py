"""What only instructors have, named once: `course release` leaves it out, the grading
sandbox hides it from a submission, and the Gradescope bundle carries only the parts grading needs.

Everything here sits in folders of the course root: the reference notebooks, each chapter's
instructor material (`instructor/chNN/`), the course's own tests and benchmarks (which hold
or load reference code) and the repository's history (which holds all of it).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from . import paths

INSTRUCTOR_ONLY = ("solutions", "instructor", "tests", "benchmarks", ".git")


def instructor_only_paths() -> list[Path]:
    """The course's instructor-only folders, those present."""
    root = paths.course_root()
    return [root / name for name in INSTRUCTOR_ONLY if (root / name).exists()]


def needed_for_grading(chapter_ids: list[str]) -> list[Path]:
    """The instructor-only files `course grade` needs for `chapter_ids`, relative to the course root:
    the reference notebooks and the hidden checks (a Gradescope bundle carries these and no more)."""
    root = paths.course_root()
    files = [root / "instructor" / "__init__.py"]
    for chapter_id in chapter_ids:
        files += sorted(p for p in paths.solution_notebook(chapter_id).parent.rglob("*") if p.is_file())
        files += [paths.instructor_dir(chapter_id) / "__init__.py", paths.hidden_checks(chapter_id)]
    return [f.relative_to(root) for f in files if f.is_file()]


def missing_for_grading(chapter_ids: list[str]) -> list[Path]:
    """The reference notebooks and hidden checks of `chapter_ids` that are not here, relative to the course root."""
    root = paths.course_root()
    wanted = [f(chapter_id) for chapter_id in chapter_ids for f in (paths.solution_notebook, paths.hidden_checks)]
    return [f.relative_to(root) for f in wanted if not f.is_file()]


def is_instructor_only(relative: Path) -> bool:
    """Whether a path relative to the course root lies in instructor-only material."""
    return bool(relative.parts) and relative.parts[0] in INSTRUCTOR_ONLY


def instructor_module(chapter_id: str, part: str) -> ModuleType:
    """`instructor/<chapter_id>/<part>.py` imported (`hidden`, `recorder`, `mutants`)."""
    root = str(paths.course_root())
    if root not in sys.path:  # the instructor folder is the course's, not an installed package
        sys.path.insert(0, root)
    return importlib.import_module(f"instructor.{chapter_id}.{part}")
