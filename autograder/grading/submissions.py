"""Who handed in which notebook: student ids, a notebook per chapter, and file names safe to write.

Accepted layouts under the submissions folder:

    <student>/chNN/chNN.ipynb     nbgrader's submitted/ folder
    <student>/chNN.ipynb
    <student>.ipynb               one notebook; its chapter is read from the exercise cells' grade_ids

A student folder without chNN-named notebooks is searched (one level deep) for
notebooks whose exercise cells name a chapter. The student id is the folder's (or
file's) name as handed in; output files use `safe_name`, which can never leave
the results folder.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from .. import loader
from ..manifest import Course

IGNORED = {".ipynb_checkpoints", ".DS_Store", "__MACOSX", ".git"}
MAX_NOTEBOOK_BYTES = 100 * 2**20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class HandIn:
    """One student's hand-in.

    `notebooks` maps a chapter id to the notebook to grade; `problems` maps a chapter
    id to (status, message) when its notebook cannot be graded at all (unreadable,
    another chapter's, a link); `missing_reason` says why a chapter with neither has
    no notebook.
    """

    student: str
    safe_id: str = ""
    notebooks: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, tuple[str, str]] = field(default_factory=dict)
    missing_reason: str = ""

    def chapters(self) -> set[str]:
        return set(self.notebooks) | set(self.problems)

    def why_missing(self, chapter_id: str) -> str:
        return self.missing_reason or f"no notebook for {chapter_id} in the submission"


def safe_name(student: str) -> str:
    """A file name for `student`'s outputs: ASCII letters, digits, '.', '_', '-', never hidden,
    never '.' or '..'; a changed name gets a short hash of the original so that names stay distinct."""
    cleaned = _UNSAFE.sub("_", student).lstrip(".")[:80]
    if cleaned == student and cleaned:
        return cleaned
    return f"{cleaned or 'student'}-{_digest(student)}"


def _digest(student: str) -> str:
    return hashlib.sha1(student.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _display_id(name: str) -> str:
    """The name as text that can be written as UTF-8 (undecodable bytes become U+FFFD)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def chapters_in(notebook: dict, course: Course) -> list[str]:
    """Ids of the chapters that have at least one exercise cell in `notebook`, in course order."""
    found = []
    for chapter in course.chapters:
        for cell in notebook.get("cells", []):
            if (
                isinstance(cell, dict)
                and loader.nbgrader_meta(cell).get("solution")
                and loader.exercise_of_cell(cell, chapter)
            ):
                found.append(chapter.id)
                break
    return found


def _read(path: Path, shown: str, folder: Path | None = None) -> tuple[dict | None, tuple[str, str] | None]:
    """The notebook at `path` (which must lie inside `folder`, when given), or (status, message)
    saying why it cannot be graded."""
    if path.is_symlink() or folder is not None and not path.resolve().is_relative_to(folder.resolve()):
        return None, ("error", f"{shown} is a symbolic link; hand in the notebook file itself")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, (
            "error",
            f"{shown} is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB; clear the cell outputs and hand it in again",
        )
    try:
        return loader.read_notebook(path), None
    except loader.ExerciseUnavailable as exc:
        return None, (exc.status, str(exc).replace(str(path), shown))
    except (RecursionError, ValueError) as exc:
        return None, (
            "error",
            f"{shown} is not a readable notebook ({type(exc).__name__}); restore it from a backup or the original chapter",
        )


def _assign(sub: HandIn, chapter_id: str, path: Path, shown: str, course: Course, folder: Path) -> None:
    """Record `path` as the student's notebook for `chapter_id`, or why it cannot be graded."""
    notebook, problem = _read(path, shown, folder)
    if problem:
        sub.problems[chapter_id] = problem
        return
    holds = chapters_in(notebook, course)
    if chapter_id not in holds and holds:
        sub.problems[chapter_id] = (
            "missing",
            f"{shown} holds the exercises of {', '.join(holds)}, not of {chapter_id}; was the wrong notebook handed in?",
        )
        return
    sub.notebooks[chapter_id] = path


def _from_folder(folder: Path, root: Path, course: Course) -> HandIn:
    sub = HandIn(_display_id(folder.name))
    for chapter in course.chapters:
        for candidate in (folder / chapter.id / f"{chapter.id}.ipynb", folder / f"{chapter.id}.ipynb"):
            if candidate.is_file() or candidate.is_symlink():
                _assign(sub, chapter.id, candidate, _display_id(str(candidate.relative_to(root))), course, folder)
                break
    if sub.chapters():
        return sub
    others = sorted(folder.glob("*.ipynb")) + sorted(folder.glob("*/*.ipynb"))
    for path in others:
        if IGNORED & set(path.relative_to(folder).parts) or not path.is_file():
            continue
        notebook, _ = _read(path, path.name, folder)
        for chapter_id in chapters_in(notebook, course) if notebook else []:
            sub.notebooks.setdefault(chapter_id, path)
    if not sub.chapters():
        sub.missing_reason = f"no chapter notebook (chNN/chNN.ipynb) in the folder {_display_id(folder.name)}"
    return sub


def _from_file(path: Path, course: Course) -> HandIn:
    sub = HandIn(_display_id(path.stem))
    notebook, problem = _read(path, _display_id(path.name))
    if problem:
        sub.missing_reason = f"{problem[1]} (so its chapter cannot be told)"
        return sub
    holds = chapters_in(notebook, course)
    for chapter_id in holds:
        sub.notebooks[chapter_id] = path
    if not holds:
        sub.missing_reason = (
            f"{_display_id(path.name)} has no exercise cells of any chapter (their nbgrader grade_ids are gone)"
        )
    return sub


def find_submissions(root: Path, course: Course, *, exclude: tuple[Path, ...] = ()) -> list[HandIn]:
    """Every student's submission under `root`, sorted by student id, with distinct safe ids.

    Entries in `exclude` (the results folder, when it lies inside `root`) are skipped.
    """
    excluded = {p.resolve() for p in exclude}
    found: dict[str, HandIn] = {}
    for entry in sorted(root.iterdir()):
        if entry.name in IGNORED or entry.resolve() in excluded or entry.is_symlink():
            continue
        if entry.is_dir():
            sub = _from_folder(entry, root, course)
        elif entry.is_file() and entry.suffix == ".ipynb":
            sub = _from_file(entry, course)
        else:
            continue
        found.setdefault(sub.student, sub)  # a folder and a file of the same name: the folder (sorted first) wins
    subs = sorted(found.values(), key=lambda s: s.student)
    names = [safe_name(s.student) for s in subs]
    folded = [n.casefold() for n in names]
    for sub, name, key in zip(subs, names, folded):
        # Distinct on case-insensitive file systems too.
        sub.safe_id = name if folded.count(key) == 1 else f"{name}-{_digest(sub.student)}"
    return subs
