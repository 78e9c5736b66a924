"""Chapter 1's DDP exercise is graded inside the sandbox: `course grade` runs the submission in its
own network namespace, where the check's two gloo processes meet over the loopback interface."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

import pytest

from autograder import manifest, paths

ROOT = paths.course_root()


@pytest.fixture(scope="module", autouse=True)
def needs_solutions():
    if not paths.solution_notebook("ch01").exists():
        pytest.skip("needs solutions/ch01")


def test_the_reference_gets_full_marks_for_ddp_inside_the_sandbox(tmp_path):
    folder = tmp_path / "class" / "reference" / "ch01"
    folder.mkdir(parents=True)
    shutil.copy(paths.solution_notebook("ch01"), folder / "ch01.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", str(tmp_path / "class"), "--out", str(tmp_path / "out")]
        + ["--chapters", "ch01", "--seed", "7", "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with open(tmp_path / "out" / "gradebook.csv", newline="", encoding="utf-8") as file:
        row = next(r for r in csv.DictReader(file) if r["student"] == "reference")
    record = json.loads((tmp_path / "out" / "submissions" / "reference.json").read_text(encoding="utf-8"))
    ddp = next(ex for ch in record["chapters"] for ex in ch["exercises"] if ex["id"] == "ch01.ddp")
    points = manifest.load().exercise("ch01.ddp").points
    assert float(row["ch01.ddp"]) == points, ddp.get("message")
    assert float(row["ch01"]) == manifest.load().chapter("ch01").max_score
