"""Text reports of check results for students: a table per chapter, one line per check."""

from __future__ import annotations

import shutil

from .scoring import SKIPPED, ChapterResult, CourseResult, ExerciseResult

MARKS = {"passed": "✓", "failed": "✗", "error": "!", "not_implemented": "·", "missing": "?", SKIPPED: "-"}


def _points(score: float, max_score: float) -> str:
    return f"{score:g}/{max_score:g}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def chapter_table(result: ChapterResult, *, verbose: bool = False) -> str:
    """The chapter's exercises: id, status, points and the first failure message."""
    width = shutil.get_terminal_size((120, 20)).columns
    id_w = max(len(ex.exercise.id) for ex in result.exercises)
    head = f"{result.chapter.id}  {result.chapter.title}  {_points(result.score, result.max_score)} points"
    lines = [head, f"  {'exercise':<{id_w}}  {'status':<15}  {'points':>7}  message"]
    message_w = max(width - id_w - 32, 30)
    for ex in result.exercises:
        message = ex.message if verbose else _clip(ex.message, message_w)
        lines.append(
            f"  {ex.exercise.id:<{id_w}}  {MARKS[ex.status]} {ex.status:<13}  "
            f"{_points(ex.score, ex.max_score):>7}  {message}".rstrip()
        )
        if verbose:
            lines += [f"      {MARKS[c.outcome]} {c.name}: {c.message}".rstrip(": ") for c in ex.checks]
    return "\n".join(lines)


def course_report(result: CourseResult, *, verbose: bool = False) -> str:
    tables = [chapter_table(ch, verbose=verbose) for ch in result.chapters]
    total = f"total {_points(result.score, result.max_score)} points"
    return "\n\n".join(tables + [total])


def check_lines(ex: ExerciseResult) -> list[str]:
    """One short line per check, for the check cell of a notebook."""
    lines = [f"{ex.exercise.id}: {_points(ex.score, ex.max_score)} points ({ex.status})"]
    for check in ex.checks:
        detail = f": {_clip(check.message, 200)}" if check.message and check.outcome != "passed" else ""
        lines.append(f"  {MARKS[check.outcome]} {check.name}{detail}")
    if not ex.checks and ex.message:
        lines.append(f"  {MARKS[ex.status]} {ex.message}")
    return lines
