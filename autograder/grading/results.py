"""A run's report, validated and scored into the per-submission record every output is built from.

The report comes from a process that ran student code, so nothing in it is taken
beyond the outcome of each named check: exercise ids must be the graded chapters',
outcomes and visibilities the known ones, texts are clipped, and points are computed
here from course.toml. Hidden checks keep their names and outcomes, but their
messages become generic ones, so no feedback shows a hidden input or expected value.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from ..manifest import Chapter, Course
from ..mistakes import NAMES_THE_MISTAKE
from ..runner import PRODUCED
from ..scoring import SKIPPED, STATUSES, ChapterResult, CheckResult, ExerciseResult, score_chapter
from .submissions import HandIn
from .verdicts import GRADER_MESSAGES, decode

MAX_TEXT = 2000
MAX_CHECKS = 10000
OUTPUT_KEPT_CHARS = 40000
_EXCEPTION_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*): ")


class ReportError(Exception):
    """The report does not have the shape the worker writes."""


def _clip(value: object) -> str:
    if not isinstance(value, str):
        raise ReportError(f"expected text, found {type(value).__name__}")
    value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates cannot be written as UTF-8
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def parse_report(report: object, course: Course, chapter_ids: list[str]) -> tuple[list[CheckResult], dict[str, bytes]]:
    """The checks in a worker's report, and the outputs of the split checks it produced (check id ->
    bytes, for `verdicts.SplitChecks`); raises ReportError for anything else."""
    if not isinstance(report, dict):
        raise ReportError("the report is not a JSON object")
    if "error" in report:
        raise ReportError(_clip(report["error"]))
    checks = report.get("checks")
    if not isinstance(checks, list) or len(checks) > MAX_CHECKS:
        raise ReportError("the report has no list of checks")
    known = {ex.id for chapter_id in chapter_ids for ex in course.chapter(chapter_id).exercises}
    parsed, produced = [], {}
    for item in checks:
        if not isinstance(item, dict) or item.get("exercise_id") not in known:
            raise ReportError("the report names a check of no graded exercise")
        if item.get("outcome") not in (*STATUSES, SKIPPED, PRODUCED) or item.get("visibility") not in (
            "public",
            "hidden",
        ):
            raise ReportError("the report has a check with an unknown outcome or visibility")
        seconds = item.get("seconds", 0.0)
        seconds = (
            float(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0 else 0.0
        )
        check_id = _clip(item.get("check_id", ""))
        parsed.append(
            CheckResult(
                item["exercise_id"],
                _clip(item.get("name")),
                item["outcome"],
                _clip(item.get("message", "")),
                item["visibility"],
                seconds,
                check_id,
            )
        )
        if item["outcome"] == PRODUCED and (outputs := decode(item.get("outputs"))) is not None:
            produced[check_id] = outputs
    return parsed, produced


def hidden_message(check: CheckResult, public_messages: set[str]) -> str:
    """What feedback may say about a check: hidden checks say pass or fail, never their inputs or expected values."""
    if check.visibility != "hidden" or check.outcome in ("passed", SKIPPED, "missing", "not_implemented"):
        return check.message
    if check.message in public_messages or check.message.startswith("took longer than"):
        return check.message  # the same for every check of the exercise: a broken cell, a setup problem, a timeout
    if check.message in GRADER_MESSAGES:
        return check.message  # the grader's own words about the report, not the student code's
    if check.outcome == "failed":
        found = "a hidden check found a difference from the reference on inputs drawn at grading time"
        _, named, mistake = check.message.partition(NAMES_THE_MISTAKE)
        return f"{found}{named}{mistake}" if named else found
    match = _EXCEPTION_NAME.match(check.message)
    raised = f"raised {match.group(1)}" if match else "stopped with an error"
    return f"your code {raised} in a hidden check, on inputs drawn at grading time"


def _for_feedback(checks: list[CheckResult], memory_mb: int) -> list[CheckResult]:
    public = {c.message for c in checks if c.visibility == "public"}
    shown = []
    for check in checks:
        message = hidden_message(check, public)
        if "MemoryError" in message:
            message += f" (a submission may use {memory_mb} MB)"
        shown.append(
            CheckResult(check.exercise_id, check.name, check.outcome, message, check.visibility, check.seconds)
        )
    return shown


def _unavailable(chapter: Chapter, status: str, message: str) -> ChapterResult:
    return ChapterResult(
        chapter, [ExerciseResult(ex, status=status, score=0.0, message=message) for ex in chapter.exercises]
    )


def _chapter_json(result: ChapterResult) -> dict:
    obj = result.to_json()
    for ex_obj, ex in zip(obj["exercises"], result.exercises):
        ex_obj["checks"] = [
            {"name": c.name, "outcome": c.outcome, "message": c.message, "visibility": c.visibility} for c in ex.checks
        ]
    return obj


def build_record(
    sub: HandIn,
    course: Course,
    chapter_ids: list[str],
    *,
    checks: list[CheckResult],
    error: str,
    seed: int,
    seconds: float,
    output: str,
    chapter_errors: dict[str, str] | None = None,
) -> dict:
    """The submission's scores and messages per chapter and exercise (the file `outputs` reads).

    `error` (no run gave a usable report), or a chapter's message in `chapter_errors` (its run
    gave none), gives every exercise of those chapters zero with that message.
    """
    chapter_errors = chapter_errors or {}
    shown = _for_feedback(checks, course.limits.memory_mb)
    chapters = []
    for chapter_id in chapter_ids:
        chapter = course.chapter(chapter_id)
        if chapter_id in sub.problems:
            result = _unavailable(chapter, *sub.problems[chapter_id])
        elif chapter_id not in sub.notebooks:
            result = _unavailable(chapter, "missing", sub.why_missing(chapter_id))
        elif error or chapter_id in chapter_errors:
            result = _unavailable(chapter, "error", error or chapter_errors[chapter_id])
        else:
            result = score_chapter(
                chapter, list(chapter.exercises), [c for c in shown if c.exercise_id.startswith(f"{chapter_id}.")]
            )
        chapters.append(result)
    if len(output) > OUTPUT_KEPT_CHARS:
        output = output[: OUTPUT_KEPT_CHARS // 2] + "\n[...]\n" + output[-OUTPUT_KEPT_CHARS // 2 :]
    return {
        "student": sub.student,
        "safe_id": sub.safe_id,
        "status": "error" if error or chapter_errors else "graded",
        "message": error or "; ".join(chapter_errors.values()),
        "seed": seed,
        "seconds": round(seconds, 2),
        "score": round(sum(ch.score for ch in chapters), 6),
        "max_score": sum(ch.max_score for ch in chapters),
        "chapters": [_chapter_json(ch) for ch in chapters],
        "output": output,
    }


def read_record(path: Path) -> dict | None:
    """A record written by an earlier run, or None when there is none or it cannot be read."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_current(record: dict | None, sub: HandIn, chapter_ids: list[str], seed: int) -> bool:
    """Whether `record` grades `sub` on `chapter_ids` with `seed` (so a resumed run may keep it)."""
    return (
        record is not None
        and record.get("student") == sub.student
        and record.get("seed") == seed
        and [ch.get("id") for ch in record.get("chapters", [])] == chapter_ids
    )
