"""Bad submissions: each broken exercise gets a clear status and zero, every other exercise is still graded."""

from __future__ import annotations

import dataclasses
import json

import pytest

from autograder import checking, loader, manifest, paths

CHAPTER = "ch02"


@pytest.fixture(scope="module")
def reference_cells():
    path = paths.solution_notebook(CHAPTER)
    if not path.exists():
        pytest.skip("needs solutions/")
    return loader.read_notebook(path)["cells"]


def with_cell(cells, exercise_id, source):
    return loader.with_cell_source(cells, manifest.load().chapter(CHAPTER), exercise_id, source)


def grade(tmp_path, cells, course=None):
    course = course or manifest.load()
    path = tmp_path / "submission.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    exercises = list(course.chapter(CHAPTER).exercises)
    result = checking.check_notebooks(course, exercises, path)
    return {ex.exercise.id: ex for ex in result.chapters[0].exercises}


def assert_others_pass(results, broken):
    for ex_id, ex in results.items():
        if ex_id != broken and ex_id != "ch02.create_dataloader":  # it builds on GPTDatasetV1
            assert ex.status == "passed", (ex_id, ex.status, ex.message)


def test_syntax_error_in_one_cell(tmp_path, reference_cells):
    results = grade(tmp_path, with_cell(reference_cells, "ch02.gpt_dataset", "class GPTDatasetV1(Dataset)\n    pass\n"))
    broken = results["ch02.gpt_dataset"]
    assert (broken.status, broken.score) == ("error", 0) and "syntax error on line 1" in broken.message
    assert_others_pass(results, "ch02.gpt_dataset")


def test_cell_that_raises(tmp_path, reference_cells):
    results = grade(tmp_path, with_cell(reference_cells, "ch02.simple_tokenizer", "import json\njson.loads('{')\n"))
    broken = results["ch02.simple_tokenizer"]
    assert (broken.status, broken.score) == ("error", 0) and "raised JSONDecodeError" in broken.message
    assert_others_pass(results, "ch02.simple_tokenizer")


def test_deleted_cell(tmp_path, reference_cells):
    cells = [
        c for c in reference_cells if loader.exercise_of_cell(c, manifest.load().chapter(CHAPTER)) != "ch02.bpe_train"
    ]
    results = grade(tmp_path, cells)
    assert (results["ch02.bpe_train"].status, results["ch02.bpe_train"].score) == ("missing", 0)
    assert_others_pass(results, "ch02.bpe_train")


def test_misspelt_class_name(tmp_path, reference_cells):
    source = loader.cell_source(
        next(
            c
            for c in reference_cells
            if loader.exercise_of_cell(c, manifest.load().chapter(CHAPTER)) == "ch02.input_embeddings"
        )
    )
    results = grade(
        tmp_path,
        with_cell(
            reference_cells, "ch02.input_embeddings", source.replace("class InputEmbedding", "class InputEmbeding")
        ),
    )
    broken = results["ch02.input_embeddings"]
    assert broken.status == "missing" and "no class named InputEmbedding; found InputEmbeding" in broken.message


def test_wrong_return_type(tmp_path, reference_cells):
    source = "def build_vocab(text):\n    return sorted(set(text.split()))\n\nclass SimpleTokenizerV2:\n    def __init__(self, vocab):\n        pass\n"
    results = grade(tmp_path, with_cell(reference_cells, "ch02.simple_tokenizer", source))
    broken = results["ch02.simple_tokenizer"]
    assert broken.score == 0 and broken.status in ("failed", "error")
    assert "should be a dict; got list" in broken.message


def test_stub_left_in_place_is_not_implemented(tmp_path, reference_cells):
    source = "def train_bpe(text, vocab_size, special_tokens):\n    raise NotImplementedError()\n"
    results = grade(tmp_path, with_cell(reference_cells, "ch02.bpe_train", source))
    assert (results["ch02.bpe_train"].status, results["ch02.bpe_train"].score) == ("not_implemented", 0)
    assert_others_pass(results, "ch02.bpe_train")


def test_infinite_loop_times_out_and_the_rest_is_graded(tmp_path, reference_cells):
    course = manifest.load()
    course = dataclasses.replace(course, limits=dataclasses.replace(course.limits, exercise_timeout_s=1.0))
    source = "def train_bpe(text, vocab_size, special_tokens):\n    while True:\n        pass\n"
    results = grade(tmp_path, with_cell(reference_cells, "ch02.bpe_train", source), course)
    broken = results["ch02.bpe_train"]
    assert (broken.status, broken.score) == ("error", 0) and "took longer than the 1 s" in broken.message
    assert_others_pass(results, "ch02.bpe_train")


def test_malformed_notebook_json(tmp_path):
    path = tmp_path / "submission.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", ')
    course = manifest.load()
    result = checking.check_notebooks(course, list(course.chapter(CHAPTER).exercises), path)
    for ex in result.chapters[0].exercises:
        assert (ex.status, ex.score) == ("error", 0) and "not a readable notebook" in ex.message
