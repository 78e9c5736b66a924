"""nbgrader's own pipeline grades the chapters: generate_assignment, then autograde scores the check cells."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from autograder import data, manifest, paths

ROOT = paths.course_root()


def nbgrader(*args: str, cwd) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


# ch04 also proves that `from previous_chapters import ...` works inside nbgrader's kernel.
@pytest.mark.parametrize("chapter_id", ["ch02", "ch04"])
def test_nbgrader_autograde_gives_the_reference_full_points_and_the_stub_zero(chapter_id, tmp_path, monkeypatch, needs_gpt2_files):
    for name in ("course.toml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("downloads"))
    for student, source in (("alice", paths.solution_notebook(chapter_id)), ("bob", paths.student_notebook(chapter_id))):
        (tmp_path / "submitted" / student / chapter_id).mkdir(parents=True)
        shutil.copy(source, tmp_path / "submitted" / student / chapter_id / f"{chapter_id}.ipynb")
    monkeypatch.setenv("COURSE_DATA_DIR", str(data.data_dir()))

    nbgrader("generate_assignment", chapter_id, "--force", f"--CourseDirectory.release_directory={tmp_path / 'release'}", cwd=tmp_path)
    nbgrader("autograde", chapter_id, "--force", cwd=tmp_path)

    from nbgrader.api import Gradebook

    points = manifest.load().chapter(chapter_id).max_score
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        alice = gradebook.find_submission(chapter_id, "alice")
        bob = gradebook.find_submission(chapter_id, "bob")
        assert (alice.score, alice.max_score) == (points, points)
        assert bob.score == 0
