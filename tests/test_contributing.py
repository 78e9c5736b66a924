"""CONTRIBUTING.md's "Adding a chapter" stays true: the files it lists make a chapter.

A course is built in a temporary folder from the course's packages and the template chapter
(`tests/chapter_template/`, named ch99 there), and the page's commands prove it: recorded
outputs, generated stubs, full marks for the reference, zero for the stubs, a green self-test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import paths, release

ROOT = paths.course_root()
TEMPLATE = Path(__file__).resolve().parent / "chapter_template"
CHAPTER = "ch99"


def listed_files() -> set[str]:
    """The file paths that start the lines of the code blocks in CONTRIBUTING.md's "Adding a chapter"."""
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Adding a chapter", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```\n(.*?)```", section, flags=re.S)
    first_words = [line.split()[0] for block in blocks for line in block.splitlines() if line.strip()]
    return {word for word in first_words if "/" in word or word.endswith(".toml")}


def template_files() -> set[str]:
    """The template's files, written as the page writes them (chNN, <exercise>, <name>)."""
    found = set()
    for path in TEMPLATE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            name = path.relative_to(TEMPLATE).as_posix()
            found.add(re.sub(r"alternatives/[^/]+/[^/]+\.py$", "alternatives/<exercise>/<name>.py", name))
    return found


def test_the_page_lists_exactly_the_templates_files_and_what_is_generated_from_them():
    generated = {
        "autograder/checks/recorded/chNN.pt",
        "autograder/checks/recorded/chNN.mistakes.pt",
        "chapters/chNN/chNN.ipynb",
    }
    assert listed_files() == template_files() | generated


def course(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "COURSE_ROOT": str(folder),
        "COURSE_DATA_DIR": str(folder / "data" / "downloads"),
    }
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.fixture(scope="module")
def template_course(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("contributing") / "course"
    leftovers = shutil.ignore_patterns(*release.LOCAL_LEFTOVERS)
    for package in release.STUDENT_PACKAGES:
        shutil.copytree(ROOT / package, folder / package, ignore=leftovers)
    for name in ("nbgrader_config.py", "pyproject.toml", "README.md", "data/manifest.toml", "instructor/__init__.py"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, folder / name)
    header = release.manifest_text((ROOT / "course.toml").read_text(encoding="utf-8"), [])
    for path in TEMPLATE.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            target = folder / path.relative_to(TEMPLATE).as_posix().replace("chNN", CHAPTER)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8").replace("chNN", CHAPTER)
            if target.name == "course.toml":
                text = header + "\n" + text
            target.write_text(text, encoding="utf-8")
    return folder


def test_a_chapter_made_of_the_listed_files_passes_its_self_test(template_course):
    for command in (["fixtures", CHAPTER], ["release", CHAPTER]):
        done = course(template_course, *command)
        assert done.returncode == 0, done.stdout + done.stderr
    recorded = template_course / "autograder" / "checks" / "recorded"
    assert (recorded / f"{CHAPTER}.pt").is_file() and (recorded / f"{CHAPTER}.mistakes.pt").is_file()

    reference = course(
        template_course, "check", CHAPTER, "--hidden", "--json", "--notebook", f"solutions/{CHAPTER}/{CHAPTER}.ipynb"
    )
    assert reference.returncode == 0, reference.stdout + reference.stderr
    assert json.loads(reference.stdout)["score"] == 2

    stubs = course(template_course, "check", CHAPTER, "--json")
    assert stubs.returncode == 1 and json.loads(stubs.stdout)["score"] == 0

    selftest = course(template_course, "selftest", CHAPTER)
    assert selftest.returncode == 0, selftest.stdout + selftest.stderr
    assert f"{CHAPTER}: 3/3 mutants killed, " in selftest.stdout and selftest.stdout.splitlines()[0].endswith("OK")
