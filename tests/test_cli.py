"""The `course` command keeps its contract: JSON shape, statuses and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from autograder import paths

ROOT = paths.course_root()
SOLUTION = str(paths.solution_notebook("ch02"))


def course(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def exercises(obj):
    return [ex for ch in obj["chapters"] for ex in ch["exercises"]]


def test_reference_gets_full_marks_as_one_json_object(needs_gpt2_files):
    done = course("check", "ch02", "--notebook", SOLUTION, "--json")
    obj = json.loads(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(obj) == {"score", "max_score", "chapters"}
    assert obj["score"] == obj["max_score"] == 17
    for ex in exercises(obj):
        assert set(ex) == {"id", "title", "score", "max_score", "status", "message"}
        assert ex["status"] == "passed" and ex["score"] == ex["max_score"]


def test_a_folder_of_notebooks_checks_several_chapters_at_once():
    done = course("check", "ch03", "ch04", "--notebook", str(ROOT / "solutions"), "--json")
    obj = json.loads(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [ch["id"] for ch in obj["chapters"]] == ["ch03", "ch04"]
    assert obj["score"] == obj["max_score"] == 30
    one_file = course("check", "ch03", "ch04", "--notebook", str(paths.solution_notebook("ch03")))
    assert one_file.returncode == 2 and "single chapter" in one_file.stderr


def test_stubs_get_zero_and_not_implemented():
    done = course("check", "ch02", "--json")
    obj = json.loads(done.stdout)
    assert done.returncode == 1
    assert obj["score"] == 0
    assert {ex["status"] for ex in exercises(obj)} == {"not_implemented"}


def test_one_exercise_reports_only_that_exercise():
    obj = json.loads(course("check", "ch02.gpt_dataset", "--notebook", SOLUTION, "--json").stdout)
    assert [ex["id"] for ex in exercises(obj)] == ["ch02.gpt_dataset"]
    assert obj["score"] == obj["max_score"] == 3


@pytest.mark.parametrize(
    "args", [("check", "ch99.no_such_exercise"), ("check", "ch99"), ("check", "ch02", "--notebook", "nowhere.ipynb")]
)
def test_unknown_targets_exit_with_2(args):
    done = course(*args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip()


def test_table_shows_status_points_and_message_without_traceback():
    done = course("check", "ch02")
    assert done.returncode == 1
    assert "ch02.gpt_dataset" in done.stdout and "not_implemented" in done.stdout and "0/3" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("command", ["check", "progress", "release", "fixtures", "selftest", "data"])
def test_every_command_has_help_with_an_example(command):
    done = course(command, "--help")
    assert done.returncode == 0 and "example" in done.stdout


def test_release_check_finds_chapters_in_sync():
    done = course("release", "--check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_malformed_manifest_exits_with_2_naming_the_file(tmp_path):
    (tmp_path / "course.toml").write_text('[course]\ntitle = "T"\nversion = 1\n')
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "check", "ch02"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COURSE_ROOT": str(tmp_path)},
    )
    assert done.returncode == 2
    assert str(tmp_path / "course.toml") in done.stderr and "course.version" in done.stderr


def test_progress_shows_every_chapter():
    done = course("progress")
    assert done.returncode == 0
    assert "ch02" in done.stdout and "0/17 points" in done.stdout and "total" in done.stdout


def test_public_checks_work_without_solutions(tmp_path):
    """A student's copy has no solutions/: the public checks still grade a full solution."""
    for name in ("course.toml", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    notebook = tmp_path / "mine.ipynb"
    notebook.write_text(paths.solution_notebook("ch02").read_text())
    env = {**os.environ, "COURSE_ROOT": str(tmp_path), "COURSE_DATA_DIR": str(ROOT / "data" / "downloads")}
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "check", "ch02", "--notebook", str(notebook), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["score"] == 17


@pytest.mark.parametrize(
    "command",
    [
        ["selftest", "ch02"],
        ["grade", "{submitted}", "--out", "{out}", "--chapters", "ch02"],
        ["gradescope", "--out", "{out}/ch02.zip", "--chapters", "ch02"],
    ],
)
def test_grading_without_the_data_a_check_needs_refuses_to_start_and_names_the_fetch(tmp_path, command):
    if not paths.solutions_dir().is_dir():
        pytest.skip("needs solutions/")
    submitted = tmp_path / "submitted" / "student" / "ch02"
    submitted.mkdir(parents=True)
    (submitted / "ch02.ipynb").write_bytes(paths.solution_notebook("ch02").read_bytes())
    args = [part.format(submitted=tmp_path / "submitted", out=tmp_path / "out") for part in command]
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "no-data"), "TIKTOKEN_CACHE_DIR": str(tmp_path / "no-cache")}
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "course data fetch gpt2-bpe" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists() and not (tmp_path / "out" / "ch02.zip").exists()


@pytest.fixture
def root_without_instructor(tmp_path):
    """A course root with the reference notebooks and without instructor/ (its hidden checks)."""
    if not paths.solutions_dir().is_dir():
        pytest.skip("needs solutions/")
    root = tmp_path / "course"
    root.mkdir()
    for name in ("course.toml", "data", "solutions", "chapters"):
        (root / name).symlink_to(ROOT / name)
    return root


@pytest.mark.parametrize(
    "command",
    [
        ["selftest", "ch02"],
        ["grade", "{submitted}", "--out", "{out}", "--chapters", "ch02"],
        ["gradescope", "--out", "{out}/ch02.zip", "--chapters", "ch02"],
    ],
)
def test_grading_without_the_hidden_checks_refuses_to_start_and_names_them(tmp_path, root_without_instructor, command):
    submitted = tmp_path / "submitted" / "student" / "ch02"
    submitted.mkdir(parents=True)
    (submitted / "ch02.ipynb").write_bytes(paths.solution_notebook("ch02").read_bytes())
    args = [part.format(submitted=tmp_path / "submitted", out=tmp_path / "out") for part in command]
    env = {**os.environ, "COURSE_ROOT": str(root_without_instructor)}
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args],
        cwd=root_without_instructor,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "instructor/ch02/hidden.py" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "gradebook.csv").exists() and not (tmp_path / "out" / "ch02.zip").exists()


def test_nbgrader_autograde_without_the_hidden_checks_fails_the_cell_instead_of_skipping(root_without_instructor):
    """Where the reference is, `check` grades as `course grade` does: it raises rather than leave out the hidden checks."""
    program = "import autograder; autograder.check('ch02.gpt_dataset', namespace={})"
    env = {**os.environ, "COURSE_ROOT": str(root_without_instructor), "NBGRADER_EXECUTION": "autograde"}
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=root_without_instructor,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode != 0
    assert "UsageError" in done.stderr and "instructor/ch02/hidden.py" in done.stderr
