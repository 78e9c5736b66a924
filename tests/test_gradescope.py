"""`course gradescope`: the bundle holds what Gradescope runs, and grades a submission like `course grade`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import manifest, paths
from llmcourse import data

ROOT = paths.course_root()
CHAPTER = "ch02"
SEED = 4242
TEST_KEYS = {"name", "score", "max_score", "output", "visibility"}


@pytest.fixture(scope="module", autouse=True)
def needs_solutions():
    if not paths.solution_notebook(CHAPTER).exists():
        pytest.skip("needs solutions/")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "gradescope", "--out", str(out), "--chapters", CHAPTER],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return out


def gradescope_root(tmp_path: Path, bundle: Path, notebook: Path) -> Path:
    """An /autograder folder as Gradescope lays it out: the bundle in source/, the hand-in in submission/."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission" / "work").mkdir(parents=True)
    shutil.copyfile(notebook, root / "submission" / "work" / f"{CHAPTER}.ipynb")
    return root


def bundle_environment(root: Path) -> dict[str, str]:
    """The bundled course, not this checkout, on the path; data from this checkout, since nothing is installed."""
    source = root / "source"
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_ROOT", "PYTHONPATH")}
    env.update(
        PYTHONPATH=str(source),
        COURSE_DATA_DIR=str(data.data_dir().resolve()),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}",
    )
    return env


def results_of(root: Path) -> dict:
    return json.loads((root / "results" / "results.json").read_text(encoding="utf-8"))


def test_bundle_holds_the_scripts_the_course_and_the_hidden_checks(bundle):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
        course_toml = archive.read("course.toml").decode()
    for name in (
        "setup.sh",
        "run_autograder",
        "course.toml",
        "pyproject.toml",
        "data/manifest.toml",
        "autograder/cli.py",
        f"instructor/{CHAPTER}/hidden.py",
        "llmcourse/data.py",
        f"solutions/{CHAPTER}/{CHAPTER}.ipynb",
        "previous_chapters/__init__.py",
    ):
        assert name in names, name
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} is not executable in the zip"
    assert not any(n.startswith(("chapters/", "tests/", "benchmarks/")) or "__pycache__" in n for n in names)
    assert not any(
        n.startswith(f"instructor/{CHAPTER}/")
        and n != f"instructor/{CHAPTER}/hidden.py"
        and not n.endswith("__init__.py")
        for n in names
    ), "mutants, alternatives or recorders in the bundle"
    assert not any(n.startswith("solutions/") and not n.startswith(f"solutions/{CHAPTER}/") for n in names)
    assert 'id = "ch03"' not in course_toml and f'id = "{CHAPTER}"' in course_toml


def test_setup_installs_the_bundled_course_with_pinned_torch(bundle):
    with zipfile.ZipFile(bundle) as archive:
        setup = archive.read("setup.sh").decode()
        pyproject = archive.read("pyproject.toml").decode()
    assert '"torch==2.13.0"' in setup and '"torch==2.13.0"' in pyproject
    assert "pip install" in setup and " -e ." in setup
    assert "data fetch" in setup and "gpt2-bpe" in setup


def test_run_autograder_gives_full_marks_to_the_reference_notebook(tmp_path, bundle, needs_gpt2_files):
    root = gradescope_root(tmp_path, bundle, paths.solution_notebook(CHAPTER))
    done = subprocess.run(
        [sys.executable, "-m", "autograder.grading.gradescope_bundle", "run", "--root", str(root), "--seed", str(SEED)],
        cwd=root / "source",
        env=bundle_environment(root),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    result = results_of(root)
    full = manifest.load().chapter(CHAPTER).max_score
    assert result["score"] == full == 17
    assert result["tests"] and all(TEST_KEYS <= t.keys() for t in result["tests"])
    assert sum(t["score"] for t in result["tests"]) == pytest.approx(full, abs=1e-3)
    assert {t["visibility"] for t in result["tests"]} == {"visible", "after_published"}


def test_run_autograder_gives_zero_to_the_student_stub(tmp_path, bundle):
    root = gradescope_root(tmp_path, bundle, paths.student_notebook(CHAPTER))
    done = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        cwd=tmp_path,
        env={**bundle_environment(root), "AUTOGRADER_ROOT": str(root)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    result = results_of(root)
    assert result["score"] == 0
    assert result["extra_data"]["max_score"] == manifest.load().chapter(CHAPTER).max_score
    assert all(t["score"] == 0 for t in result["tests"])


def test_a_submission_without_chapter_notebooks_gets_zero_and_says_what_to_hand_in(tmp_path, bundle):
    root = gradescope_root(tmp_path, bundle, paths.solution_notebook(CHAPTER))
    (root / "submission" / "work" / f"{CHAPTER}.ipynb").rename(root / "submission" / "work" / "notes.ipynb")
    done = subprocess.run(
        [sys.executable, "-m", "autograder.grading.gradescope_bundle", "run", "--root", str(root)],
        cwd=root / "source",
        env=bundle_environment(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = results_of(root)
    assert result["score"] == 0 and f"{CHAPTER}.ipynb" in result["output"]
