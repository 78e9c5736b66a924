"""nbgrader's own pipeline grades the chapters: generate_assignment, then autograde scores the check cells."""
from __future__ import annotations

import shutil
import subprocess
import sys

from autograder import data, paths

ROOT = paths.course_root()


def nbgrader(*args: str, cwd) -> None:
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=cwd,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def test_nbgrader_autograde_gives_the_reference_full_points_and_the_stub_zero(tmp_path, monkeypatch, needs_gpt2_files):
    for name in ("course.toml", "nbgrader_config.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(ROOT / "data", tmp_path / "data", ignore=shutil.ignore_patterns("downloads"))
    for student, source in (("alice", paths.solution_notebook("ch02")), ("bob", paths.student_notebook("ch02"))):
        (tmp_path / "submitted" / student / "ch02").mkdir(parents=True)
        shutil.copy(source, tmp_path / "submitted" / student / "ch02" / "ch02.ipynb")
    monkeypatch.setenv("COURSE_DATA_DIR", str(data.data_dir()))

    nbgrader("generate_assignment", "ch02", "--force", f"--CourseDirectory.release_directory={tmp_path / 'release'}", cwd=tmp_path)
    nbgrader("autograde", "ch02", "--force", cwd=tmp_path)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        alice = gradebook.find_submission("ch02", "alice")
        bob = gradebook.find_submission("ch02", "bob")
        assert (alice.score, alice.max_score) == (17, 17)
        assert bob.score == 0
