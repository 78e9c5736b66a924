"""nbgrader's own pipeline grades the chapters: generate_assignment, then autograde scores the check cells."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from autograder import manifest, paths
from llmcourse import data

ROOT = paths.course_root()


def nbgrader(*args: str, cwd) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture
def course_dir(tmp_path, monkeypatch, needs_gpt2_files):
    """An nbgrader course folder: the manifest, nbgrader's configuration, the reference notebooks, the hidden checks
    and the data manifest."""
    for name in ("course.toml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("solutions", "instructor"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("downloads"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(data.data_dir()))
    return tmp_path


# ch04 also proves that `from previous_chapters import ...` works inside nbgrader's kernel.
@pytest.mark.parametrize("chapter_id", ["ch02", "ch04"])
def test_nbgrader_autograde_gives_the_reference_full_points_and_the_stub_zero(chapter_id, course_dir):
    for student, source in (
        ("alice", paths.solution_notebook(chapter_id)),
        ("bob", paths.student_notebook(chapter_id)),
    ):
        (course_dir / "submitted" / student / chapter_id).mkdir(parents=True)
        shutil.copy(source, course_dir / "submitted" / student / chapter_id / f"{chapter_id}.ipynb")

    nbgrader(
        "generate_assignment",
        chapter_id,
        "--force",
        f"--CourseDirectory.release_directory={course_dir / 'release'}",
        cwd=course_dir,
    )
    nbgrader("autograde", chapter_id, "--force", cwd=course_dir)

    from nbgrader.api import Gradebook

    points = manifest.load().chapter(chapter_id).max_score
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        alice = gradebook.find_submission(chapter_id, "alice")
        bob = gradebook.find_submission(chapter_id, "bob")
        assert (alice.score, alice.max_score) == (points, points)
        assert bob.score == 0


@pytest.mark.slow
def test_nbgrader_autograde_and_course_grade_give_the_same_points(course_dir, monkeypatch):
    """A class of reference, stub and mutated ch02 notebooks: every exercise's points agree, partial credit included."""
    from autograder.selftest import mutants as chapter_mutants
    from autograder.selftest import mutated_notebook

    chapter_id = "ch02"
    students = {"reference": paths.solution_notebook(chapter_id), "stub": paths.student_notebook(chapter_id)}
    for student, source in students.items():
        (course_dir / "submitted" / student / chapter_id).mkdir(parents=True)
        shutil.copy(source, course_dir / "submitted" / student / chapter_id / f"{chapter_id}.ipynb")
    mutants = {f"mutant{i}": mutant for i, mutant in enumerate(chapter_mutants(chapter_id)[::12])}
    for student, mutant in mutants.items():
        (course_dir / "submitted" / student / chapter_id).mkdir(parents=True)
        notebook = mutated_notebook(manifest.load(), mutant)
        (course_dir / "submitted" / student / chapter_id / f"{chapter_id}.ipynb").write_text(
            json.dumps(notebook), encoding="utf-8"
        )
    monkeypatch.setenv("COURSE_GRADE_SEED", "5")

    nbgrader(
        "generate_assignment",
        chapter_id,
        "--force",
        f"--CourseDirectory.release_directory={course_dir / 'release'}",
        cwd=course_dir,
    )
    nbgrader("autograde", chapter_id, "--force", cwd=course_dir)
    graded = subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder.cli",
            "grade",
            str(course_dir / "submitted"),
            "--out",
            str(course_dir / "results"),
            "--seed",
            "5",
            "--chapters",
            chapter_id,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert graded.returncode == 0, graded.stdout + graded.stderr

    from nbgrader.api import Gradebook

    with open(course_dir / "results" / "gradebook.csv", newline="", encoding="utf-8") as handle:
        course_grade = {row["student"]: row for row in csv.DictReader(handle)}
    exercises = manifest.load().chapter(chapter_id).exercises
    partial = 0
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        for student in [*students, *mutants]:
            for ex in exercises:
                theirs = gradebook.find_grade(f"check-{ex.grade_id}", chapter_id, chapter_id, student).score
                ours = float(course_grade[student][ex.id])
                assert theirs == pytest.approx(ours, abs=0.01), (student, ex.id)
                partial += 0 < ours < ex.points
            assert gradebook.find_submission(chapter_id, student).score == pytest.approx(
                float(course_grade[student]["total"]), abs=0.05
            )
    assert partial, "the class should include partial credit"
