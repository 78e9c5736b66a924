"""`course release --out` writes a student copy: stubs and public checks, no reference code anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import loader, manifest, paths, release

ROOT = paths.course_root()
# Lines this short (`return x`, `else:`, `pass`) occur anywhere by chance; longer ones are the reference's own.
MIN_LINE_CHARS = 12
INSTRUCTOR_ONLY_PARTS = ("solutions", "instructor", "hidden.py", "mutants.py", "recorder.py", "alternatives")
# Reference lines that a public check writes the same way because the interface fixes them:
# train_bpe's docstring documents its result as (vocab, merges); the training checks switch
# their model's mode as the exercise statements say evaluation must.
INTERFACE_LINES = {
    "return vocab, merges",
    "model.train()",
    "model.eval()",
    "self.tokenizer = tokenizer",
    "return inputs, targets",
    "return merged",
}


def released_chapters() -> list[str]:
    return [ch.id for ch in manifest.load().chapters if paths.solution_notebook(ch.id).exists()]


def solution_regions(chapter_id: str) -> tuple[set[str], str]:
    """The lines between `### BEGIN SOLUTION` and `### END SOLUTION` in the chapter's exercise cells, and the rest."""
    chapter = manifest.load().chapter(chapter_id)
    hidden, shown = set(), []
    for cell in loader.read_notebook(paths.solution_notebook(chapter_id))["cells"]:
        is_exercise = cell.get("cell_type") == "code" and loader.exercise_of_cell(cell, chapter) is not None
        inside = False
        for line in loader.cell_source(cell).splitlines():
            marker = line.strip()
            if marker in ("### BEGIN SOLUTION", "### END SOLUTION"):
                inside = is_exercise and marker == "### BEGIN SOLUTION"
            elif inside:
                hidden.add(marker)
            else:
                shown.append(line)
    return hidden, "\n".join(shown)


def solution_lines(chapter_ids: list[str]) -> set[str]:
    """The distinctive reference lines of these chapters that no reference notebook shows in the open.

    Lines a notebook also shows outside the solution regions (an exercise's
    statement quoting `self.tok_emb = nn.Embedding(vocab_size, emb_dim)`, given
    code, a later chapter's set-up reusing an earlier chapter's one-liner) are
    public by design and left out.
    """
    regions = [solution_regions(chapter_id) for chapter_id in chapter_ids]
    public = "\n".join(shown for _, shown in regions)
    hidden = set().union(*(lines for lines, _ in regions))
    return {line for line in hidden if len(line) >= MIN_LINE_CHARS and line not in public}


def readable_text(path: Path) -> str:
    """A file's bytes as text (binary fixtures included); a notebook's cell sources too, which JSON escapes."""
    text = path.read_bytes().decode("utf-8", errors="ignore")
    if path.suffix == ".ipynb":
        text += "\n".join(loader.cell_source(cell) for cell in loader.read_notebook(path)["cells"])
    return text


@pytest.fixture(scope="module")
def student_release(tmp_path_factory) -> Path:
    chapters = released_chapters()
    if not chapters:
        pytest.skip("needs solutions/")
    return release.write_student_release(tmp_path_factory.mktemp("release") / "course", chapters)


def test_release_contains_no_solution_code(student_release):
    files = [p for p in student_release.rglob("*") if p.is_file()]
    names = {p.relative_to(student_release).as_posix() for p in files}
    assert {"course.toml", "README.md", "pyproject.toml", "nbgrader_config.py", "data/manifest.toml"} <= names
    assert (
        "autograder/checks/recorded/ch02.pt" in names
        and "llmcourse/data.py" in names
        and "chapters/ch02/ch02.ipynb" in names
        and "configs/pretrain/tiny_cpu.toml" in names
    )
    for part in INSTRUCTOR_ONLY_PARTS + ("tests", "__pycache__", "downloads", "benchmarks", ".ci", ".git"):
        assert not [n for n in names if part in n.split("/")], f"{part} is in the release"

    texts = {p.relative_to(student_release).as_posix(): readable_text(p) for p in files}
    reference = solution_lines(released_chapters()) - INTERFACE_LINES
    assert reference, "found no solution lines to look for"
    leaks = sorted(f"{name}: {line}" for line in reference for name, text in texts.items() if line in text)
    assert not leaks, "reference code in the student release:\n" + "\n".join(leaks[:20])


def test_released_course_toml_lists_only_the_released_chapters(student_release):
    assert [ch.id for ch in manifest.parse(student_release / "course.toml").chapters] == released_chapters()
    text = '[course]\n\n# first\n[[chapters]]\nid = "ch02"\n\n# second\n[[chapters]]\nid = "ch03"\n'
    assert release.manifest_text(text, ["ch03"]) == '[course]\n\n# second\n[[chapters]]\nid = "ch03"\n'


def test_released_stubs_check_to_zero(student_release):
    env = {
        **os.environ,
        "PYTHONPATH": str(student_release),
        "COURSE_ROOT": str(student_release),
        "COURSE_DATA_DIR": os.environ.get("COURSE_DATA_DIR", str(ROOT / "data" / "downloads")),
    }
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "check", "ch02", "--json"],
        cwd=student_release,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    obj = json.loads(done.stdout)
    assert obj["score"] == 0 and obj["max_score"] > 0
    assert {ex["status"] for ch in obj["chapters"] for ex in ch["exercises"]} == {"not_implemented"}


@pytest.mark.parametrize("command", [["selftest"], ["fixtures"], ["check", "ch02", "--hidden"]])
def test_release_says_which_commands_need_solutions(student_release, command):
    env = {**os.environ, "PYTHONPATH": str(student_release), "COURSE_ROOT": str(student_release)}
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", *command],
        cwd=student_release,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert "needs the reference notebooks in solutions/" in done.stderr and "Traceback" not in done.stderr


def test_release_refuses_a_non_empty_out_dir(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "release", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "not an empty folder" in done.stderr and str(tmp_path) in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
