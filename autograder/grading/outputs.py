"""The class's outputs, built only from the per-submission records (`results.build_record`).

    gradebook.csv                    student, one column per exercise, per chapter total, total
    feedback/<safe id>.md            per chapter and exercise: status, points, message; each check
    feedback/<safe id>/<chapter>.md  the same for one chapter, to hand back with its notebook
    gradescope/<safe id>/results.json  Gradescope's format, a test per check
    summary.md                       per exercise: mean, how many below full marks, common failures
    totals.png                       a histogram of the totals

Every file is written atomically, and the same records always give the same bytes,
so a run resumed after a crash ends with the outputs of an uninterrupted one.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import statistics
from pathlib import Path

from ..manifest import Course
from ..report import MARKS
from .atomic import write_atomic

MESSAGE_CHARS = 400


def _points(value: float) -> str:
    return f"{value:g}"


def _cell(text: str, limit: int = MESSAGE_CHARS) -> str:
    """Text for one Markdown table cell or list item: one line, pipes escaped, clipped."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _exercises(record: dict):
    for chapter in record["chapters"]:
        yield from chapter["exercises"]


def gradebook_csv(records: list[dict], course: Course, chapter_ids: list[str]) -> str:
    exercise_ids = [ex.id for chapter_id in chapter_ids for ex in course.chapter(chapter_id).exercises]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *exercise_ids, *chapter_ids, "total"])
    for record in records:
        scores = {ex["id"]: ex["score"] for ex in _exercises(record)}
        totals = {ch["id"]: ch["score"] for ch in record["chapters"]}
        writer.writerow(
            [
                record["student"],
                *(_points(scores[i]) for i in exercise_ids),
                *(_points(totals[c]) for c in chapter_ids),
                _points(record["score"]),
            ]
        )
    return buffer.getvalue()


def _worth_listing(ex: dict) -> bool:
    """Whether an exercise's checks tell more than its message: some passed, or they fail differently."""
    if ex["status"] == "passed":
        return False
    failing = {c["message"] for c in ex["checks"] if c["outcome"] not in ("passed", "skipped")}
    return len(failing) > 1 or any(c["outcome"] == "passed" for c in ex["checks"])


def _check_line(check: dict) -> str:
    name = _cell(check["name"], 200)
    if check["visibility"] == "hidden" and not name.startswith("hidden"):
        name = f"hidden: {name}"
    detail = f": {_cell(check['message'])}" if check["message"] and check["outcome"] != "passed" else ""
    return f"- {MARKS[check['outcome']]} {name} ({check['outcome']}){detail}"


def _chapter_section(chapter: dict, course: Course, level: str) -> list[str]:
    """A chapter's table of exercises, then the checks of those whose checks tell more."""
    title = course.chapter(chapter["id"]).title
    lines = [
        f"{level} {chapter['id']} · {title}: {_points(chapter['score'])} / {_points(chapter['max_score'])} points",
        "",
        "| exercise | status | points | message |",
        "| --- | --- | --- | --- |",
    ]
    for ex in chapter["exercises"]:
        lines.append(
            f"| {ex['id']} {_cell(ex['title'])} | {MARKS[ex['status']]} {ex['status']} "
            f"| {_points(ex['score'])}/{_points(ex['max_score'])} | {_cell(ex['message'])} |"
        )
    lines.append("")
    for ex in chapter["exercises"]:
        if _worth_listing(ex):
            lines += [f"{level}# {ex['id']}", ""] + [_check_line(check) for check in ex["checks"]] + [""]
    return lines


def _grading_problem(record: dict) -> list[str]:
    return [f"> Grading could not finish: {_cell(record['message'])}", ""] if record["status"] == "error" else []


def feedback_md(record: dict, course: Course) -> str:
    """One student's feedback on every graded chapter."""
    lines = [
        f"# Feedback for {record['student']}",
        "",
        f"**{_points(record['score'])} / {_points(record['max_score'])} points**",
        "",
    ]
    lines += _grading_problem(record)
    for chapter in record["chapters"]:
        lines += _chapter_section(chapter, course, "##")
    return "\n".join(lines)


def chapter_feedback_md(record: dict, chapter: dict, course: Course) -> str:
    """One student's feedback on one chapter: what goes back with that chapter's notebook."""
    lines = [f"# Feedback for {record['student']}", ""] + _grading_problem(record)
    return "\n".join(lines + _chapter_section(chapter, course, "##"))


def _shares(points: float, count: int) -> list[float]:
    """`points` split over `count` checks, rounded to 6 decimals, the last one taking what rounding left,
    so that the shares add up to `points` exactly."""
    share = round(points / count, 6)
    return [share] * (count - 1) + [round(points - share * (count - 1), 6)]


def gradescope_json(record: dict, course: Course) -> dict:
    """Gradescope's results.json: a test per check (hidden ones shown after grades are published)."""
    tests = []
    for ex in _exercises(record):
        counted = [c for c in ex["checks"] if c["outcome"] != "skipped"]
        if not counted:
            tests.append(
                {
                    "name": f"{ex['id']}: {ex['title']}",
                    "score": ex["score"],
                    "max_score": ex["max_score"],
                    "output": f"{ex['status']}: {ex['message']}".rstrip(": "),
                    "visibility": "visible",
                }
            )
            continue
        for check, share in zip(counted, _shares(ex["max_score"], len(counted)), strict=True):
            output = check["outcome"] + (
                f": {check['message']}" if check["message"] and check["outcome"] != "passed" else ""
            )
            tests.append(
                {
                    "name": f"{ex['id']}: {check['name']}",
                    "score": share if check["outcome"] == "passed" else 0.0,
                    "max_score": share,
                    "output": output,
                    "visibility": "after_published" if check["visibility"] == "hidden" else "visible",
                }
            )
    summary = f"{_points(record['score'])} / {_points(record['max_score'])} points"
    if record["status"] == "error":
        summary += f"\nGrading could not finish: {record['message']}"
    return {
        "score": record["score"],
        "execution_time": record["seconds"],
        "output": summary,
        "tests": tests,
        "extra_data": {"student": record["student"], "max_score": record["max_score"], "status": record["status"]},
    }


def _common(messages: list[str], count: int = 3) -> str:
    stripped = [m.split(" Hint: ", 1)[0] for m in messages if m]
    ranked = collections.Counter(stripped).most_common(count)
    return "<br>".join(f"{_cell(message, 160)} ({n})" for message, n in ranked)


def summary_md(records: list[dict], course: Course, chapter_ids: list[str], seed: int) -> str:
    totals = [r["score"] for r in records]
    max_total = records[0]["max_score"] if records else 0
    lines = [
        "# Grading summary",
        "",
        f"{len(records)} submissions; chapters {', '.join(chapter_ids)}; seed {seed}.",
    ]
    if totals:
        lines.append(
            f"Totals out of {_points(max_total)}: mean {statistics.mean(totals):.2f}, median {_points(statistics.median(totals))}, "
            f"lowest {_points(min(totals))}, highest {_points(max(totals))}."
        )
    lines += ["", "![Histogram of the totals](totals.png)", "", "## Exercises", ""]
    lines += [
        "| exercise | points | mean | below full marks | most common failure messages |",
        "| --- | --- | --- | --- | --- |",
    ]
    for chapter_id in chapter_ids:
        for exercise in course.chapter(chapter_id).exercises:
            results = [ex for r in records for ex in _exercises(r) if ex["id"] == exercise.id]
            below = [ex for ex in results if ex["score"] < ex["max_score"]]
            mean = statistics.mean(ex["score"] for ex in results) if results else 0.0
            lines.append(
                f"| {exercise.id} | {_points(exercise.points)} | {mean:.2f} | {len(below)} | {_common([ex['message'] for ex in below])} |"
            )
    failed = [r for r in records if r["status"] == "error"]
    if failed:
        lines += ["", "## Submissions that could not be graded completely", ""]
        lines += [f"- {_cell(r['student'], 100)}: {_cell(r['message'])}" for r in failed]
    lines += [
        "",
        "A hidden check's full message for one student: "
        f"`course check CHAPTER --hidden --seed {seed} --notebook THEIR_NOTEBOOK --verbose`.",
        "",
    ]
    return "\n".join(lines)


def totals_png(records: list[dict]) -> bytes:
    from matplotlib.figure import Figure

    max_total = records[0]["max_score"] if records else 1
    figure = Figure(figsize=(6, 3.5), dpi=100)
    axes = figure.add_subplot()
    axes.hist([r["score"] for r in records], bins=20, range=(0, max_total or 1), color="#4878a8", edgecolor="white")
    axes.set_xlabel(f"total points (out of {_points(max_total)})")
    axes.set_ylabel("submissions")
    axes.set_title(f"Totals of {len(records)} submissions")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _remove_others(folder: Path, keep: set[str]) -> None:
    """Delete entries of `folder` not in `keep` (students no longer in the submissions)."""
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name not in keep:
                if entry.is_dir():
                    for child in entry.iterdir():
                        child.unlink()
                    entry.rmdir()
                else:
                    entry.unlink()


def write_all(out: Path, records: list[dict], course: Course, chapter_ids: list[str], seed: int) -> None:
    """Every output of the class, rebuilt from `records` (sorted by student)."""
    for record in records:
        write_atomic(out / "feedback" / f"{record['safe_id']}.md", feedback_md(record, course))
        for chapter in record["chapters"]:
            write_atomic(
                out / "feedback" / record["safe_id"] / f"{chapter['id']}.md",
                chapter_feedback_md(record, chapter, course),
            )
        _remove_others(out / "feedback" / record["safe_id"], {f"{chapter['id']}.md" for chapter in record["chapters"]})
        results = json.dumps(gradescope_json(record, course), indent=2, ensure_ascii=False)
        write_atomic(out / "gradescope" / record["safe_id"] / "results.json", results + "\n")
    _remove_others(out / "feedback", {name for r in records for name in (f"{r['safe_id']}.md", r["safe_id"])})
    _remove_others(out / "gradescope", {r["safe_id"] for r in records})
    write_atomic(out / "summary.md", summary_md(records, course, chapter_ids, seed))
    write_atomic(out / "totals.png", totals_png(records))
    write_atomic(out / "gradebook.csv", gradebook_csv(records, course, chapter_ids))
