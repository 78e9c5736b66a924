"""The book's own code drops straight in: every listing of the book's package (PyPI
`llms-from-scratch`) that defines an exercise's names, put in that exercise's cell of the
reference notebook, gets full marks on the public and hidden checks.

The package's wheel is fetched with `pip download --no-deps` into a cache folder (its
dependencies, TensorFlow among them, are not needed: only its source is read); the test
skips when the package registry cannot be reached.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder import loader, manifest, paths
from autograder.checking import check_submissions

BOOK_PACKAGE = "llms-from-scratch==1.0.19"
COURSE = manifest.load()

# The book's module that holds each chapter's listings.
BOOK_MODULE = {
    "ch02": "ch02",
    "ch03": "ch03",
    "ch04": "ch04",
    "ch05": "ch05",
    "ch06": "ch06",
    "ch07": "ch07",
    "ch08": "llama3",
    "ch09": "appendix_e",
}

# Listings whose interface the course changes on purpose.
EXEMPT = {
    "ch05.token_conversion": "the course decodes a (1,) tensor holding one id; the book's squeeze(0) makes it a "
    "0-d tensor, whose tolist() is no list",
    "ch05.load_gpt2_weights": "the course loads Hugging Face's safetensors, the book OpenAI's TensorFlow checkpoint",
    "ch06.classify_review": "the course's also takes max_length=None, caps max_length at the context and reads a "
    "Llama3Model's context from its cfg; the book's pads to max_length and reads pos_emb only",
    "ch08.grouped_query_attention": "the course raises a ValueError on sizes that do not divide, where the book asserts",
}


def _book_wheel() -> Path:
    cache = paths.cache_dir() / "book"
    found = sorted(cache.glob("llms_from_scratch-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", BOOK_PACKAGE, "-d", str(cache)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    found = sorted(cache.glob("llms_from_scratch-*.whl"))
    if done.returncode != 0 or not found:
        pytest.skip(f"the book's package could not be downloaded ({BOOK_PACKAGE}): {done.stderr.strip()[-200:]}")
    return found[-1]


@pytest.fixture(scope="module")
def book_sources() -> dict[str, str]:
    """The book's modules' source, by module name (`ch04`, `llama3`, ...)."""
    with zipfile.ZipFile(_book_wheel()) as wheel:
        return {
            Path(name).stem: wheel.read(name).decode("utf-8")
            for name in wheel.namelist()
            if name.startswith("llms_from_scratch/") and name.count("/") == 1 and name.endswith(".py")
        }


def book_cell(source: str, names: tuple[str, ...], provided: set[str]) -> str | None:
    """A notebook cell holding the module's definitions of `names`, the module's own imports, and the
    module's other top-level definitions they use that the notebook does not provide; None when the
    module lacks one of `names`."""
    tree = ast.parse(source)
    top = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            top[node.name] = node
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            top[node.targets[0].id] = node
    if not all(name in top for name in names):
        return None
    wanted, queue = [], list(names)
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.append(name)
        used = {n.id for n in ast.walk(top[name]) if isinstance(n, ast.Name)}
        queue += [n for n in used if n in top and n not in names and n not in provided and n not in wanted]
    imports = [
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0)
    ]
    chosen = {id(top[name]) for name in wanted}
    ordered = [node for node in tree.body if id(node) in chosen]
    return "\n".join(imports) + "\n\n\n" + "\n\n\n".join(ast.get_source_segment(source, n) for n in ordered) + "\n"


def listed_exercises() -> list[str]:
    return [
        ex.id
        for ex in COURSE.exercises()
        if ex.chapter_id in BOOK_MODULE and paths.solution_notebook(ex.chapter_id).exists()
    ]


@pytest.mark.parametrize("exercise_id", listed_exercises())
def test_the_books_listing_gets_full_marks(exercise_id, book_sources):
    exercise = COURSE.exercise(exercise_id)
    chapter = COURSE.chapter(exercise.chapter_id)
    provided = {name for ex in COURSE.exercises() for name in ex.names}
    cell = book_cell(book_sources[BOOK_MODULE[chapter.id]], exercise.names, provided)
    if cell is None:
        pytest.skip(f"the book has no listing of {', '.join(exercise.names)}")
    if exercise_id in EXEMPT:
        pytest.skip(EXEMPT[exercise_id])
    cells = loader.read_notebook(paths.solution_notebook(chapter.id))["cells"]
    submission = loader.load_cells(loader.with_cell_source(cells, chapter, exercise_id, cell), chapter, "the book")
    result = check_submissions(COURSE, {chapter.id: submission}, [exercise], hidden=True).chapters[0].exercises[0]
    failing = [f"{c.name}: {c.message}" for c in result.checks if c.outcome != "passed"]
    assert result.score == result.max_score, "\n".join(failing)
