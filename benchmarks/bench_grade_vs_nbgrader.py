"""Grading throughput: `course grade` against `nbgrader autograde` on the same class (the goal is 10x).

usage: python benchmarks/bench_grade_vs_nbgrader.py [--chapter ch02] [--students 30] [--workers N]

Builds a class of generated submissions in a temporary nbgrader course (a third each:
the reference, the stub, and reference notebooks with one of the chapter's mutants),
then times, in one run, `course grade` (sandboxed, public and hidden checks, `--workers`
processes) and `nbgrader autograde` (which executes every notebook top to bottom in a
kernel). Prints submissions per minute for both, the ratio, and whether the two gave
the same total to every student.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder import manifest, paths
from autograder.selftest import mutated_notebook, suite
from llmcourse import data

ROOT = Path(__file__).resolve().parent.parent


def build_class(course_dir: Path, chapter_id: str, students: int) -> list[str]:
    """A copy of the course's nbgrader set-up (with the data manifest; the files stay where
    COURSE_DATA_DIR says) with `students` submissions in submitted/; returns their ids."""
    for name in ("course.toml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, course_dir / name)
    for folder in ("solutions", "instructor"):  # the reference notebooks and the hidden checks
        shutil.copytree(ROOT / folder, course_dir / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data", course_dir / "data", ignore=shutil.ignore_patterns("downloads"))
    mutants, _ = suite(chapter_id)
    course = manifest.load()
    ids = []
    for i in range(students):
        student = f"student{i:02d}"
        folder = course_dir / "submitted" / student / chapter_id
        folder.mkdir(parents=True)
        kind = i % 3
        if kind == 0:
            shutil.copy(paths.solution_notebook(chapter_id), folder / f"{chapter_id}.ipynb")
        elif kind == 1:
            shutil.copy(paths.student_notebook(chapter_id), folder / f"{chapter_id}.ipynb")
        else:
            notebook = mutated_notebook(course, mutants[(i * 7) % len(mutants)])
            (folder / f"{chapter_id}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
        ids.append(student)
    return ids


def timed(command: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def nbgrader_totals(course_dir: Path, chapter_id: str, students: list[str]) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        return {s: gradebook.find_submission(chapter_id, s).score for s in students}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapter", default="ch02")
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    env = {**os.environ, "COURSE_DATA_DIR": str(data.data_dir()), "COURSE_GRADE_SEED": "1"}
    nbgrader = [sys.executable, "-m", "nbgrader"]
    with tempfile.TemporaryDirectory() as tmp:
        course_dir = Path(tmp)
        students = build_class(course_dir, args.chapter, args.students)
        subprocess.run(
            [
                *nbgrader,
                "generate_assignment",
                args.chapter,
                "--force",
                "--log-level=WARN",
                f"--CourseDirectory.release_directory={course_dir / 'release'}",
            ],
            cwd=course_dir,
            env=env,
            check=True,
        )
        course_seconds = timed(
            [
                sys.executable,
                "-m",
                "autograder.cli",
                "grade",
                str(course_dir / "submitted"),
                "--out",
                str(course_dir / "results"),
                "--chapters",
                args.chapter,
                "--seed",
                "1",
                "--workers",
                str(args.workers),
            ],
            course_dir,
            env,
        )
        nbgrader_seconds = timed([*nbgrader, "autograde", args.chapter, "--force", "--log-level=WARN"], course_dir, env)
        with open(course_dir / "results" / "gradebook.csv", newline="", encoding="utf-8") as handle:
            ours = {row["student"]: float(row["total"]) for row in csv.DictReader(handle)}
        theirs = nbgrader_totals(course_dir, args.chapter, students)
    differing = [s for s in students if abs(ours[s] - theirs[s]) > 0.05]
    per_minute = {
        name: 60 * args.students / seconds
        for name, seconds in (("course grade", course_seconds), ("nbgrader autograde", nbgrader_seconds))
    }
    print(
        f"{args.students} submissions of {args.chapter} on {os.cpu_count()} cores ({args.workers} course grade workers)"
    )
    for name, seconds in (("course grade", course_seconds), ("nbgrader autograde", nbgrader_seconds)):
        print(f"  {name:19} {seconds:7.1f} s  {per_minute[name]:6.1f} submissions/min")
    print(f"  ratio: course grade is {nbgrader_seconds / course_seconds:.1f}x nbgrader's throughput")
    print(
        f"  same total for every student: {not differing}" + (f" (differ: {', '.join(differing)})" if differing else "")
    )


if __name__ == "__main__":
    main()
