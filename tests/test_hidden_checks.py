"""Hidden checks compare with the live reference on seeded random inputs and never reveal them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder import checking, loader, manifest, paths, selftest
from llmcourse import data


@pytest.fixture(scope="module")
def course():
    if not paths.solution_notebook("ch02").exists():
        pytest.skip("needs solutions/")
    return manifest.load()


def hidden_results(course, cells, seed, chapter_id="ch02"):
    chapter = course.chapter(chapter_id)
    submission = loader.load_cells(cells, chapter)
    result = checking.check_submissions(
        course, {chapter_id: submission}, list(chapter.exercises), hidden=True, seed=seed
    )
    return result.chapters[0].exercises


@pytest.mark.parametrize("chapter_id", [chapter.id for chapter in manifest.load().chapters])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reference_passes_hidden_checks_for_any_seed(course, chapter_id, seed):
    if not paths.solution_notebook(chapter_id).exists():
        pytest.skip("needs solutions/")
    missing = [name for name in course.chapter(chapter_id).check_data if not data.is_available(name)]
    if missing:
        pytest.skip(f"its checks need {', '.join(missing)} (course data fetch, or ../shared/data)")
    cells = loader.read_notebook(paths.solution_notebook(chapter_id))["cells"]
    for ex in hidden_results(course, cells, seed, chapter_id):
        assert ex.status == "passed", (ex.exercise.id, ex.message)
        assert any(c.visibility == "hidden" for c in ex.checks)


def test_hidden_failure_says_what_differs_without_the_inputs(course, needs_gpt2_files):
    mutant = next(m for m in selftest.mutants("ch02") if m.exercise_id == "ch02.gpt_dataset")
    cells = loader.read_notebook(paths.solution_notebook("ch02"))["cells"]
    chapter = course.chapter("ch02")
    reference_source = loader.cell_source(cells[loader.cell_index(cells, chapter, "ch02.gpt_dataset")])
    changed = loader.with_cell_source(
        cells, chapter, "ch02.gpt_dataset", selftest.mutant_source(reference_source, mutant)
    )
    dataset = next(ex for ex in hidden_results(course, changed, 5) if ex.exercise.id == "ch02.gpt_dataset")
    hidden = [c for c in dataset.checks if c.visibility == "hidden"]
    assert hidden and hidden[0].outcome == "failed"
    message = hidden[0].message
    assert "hidden" in message and "expected" not in message and "got" not in message


def test_checking_the_llama_tokenizer_leaves_the_tiktoken_cache_as_it_was(course):
    """tiktoken caches every ranks file it reads; the checks write a fresh one each run."""
    cache = Path(os.environ["TIKTOKEN_CACHE_DIR"])
    before = sorted(cache.iterdir()) if cache.is_dir() else []
    cells = loader.read_notebook(paths.solution_notebook("ch08"))["cells"]
    chapter = course.chapter("ch08")
    exercise = [ex for ex in chapter.exercises if ex.id == "ch08.llama3_tokenizer"]
    result = checking.check_submissions(
        course, {"ch08": loader.load_cells(cells, chapter)}, exercise, hidden=True, seed=0
    )
    assert result.chapters[0].exercises[0].status == "passed"
    assert (sorted(cache.iterdir()) if cache.is_dir() else []) == before
