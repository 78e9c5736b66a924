"""The loader runs setup and exercise cells only, and reports each broken cell against its exercise."""

from __future__ import annotations

import json

from autograder import loader
from autograder.manifest import Chapter, Exercise

CHAPTER = Chapter(
    id="ch02",
    title="Text",
    exercises=(
        Exercise("ch02.first", "First", 1.0, ("GPTDatasetV1",), ""),
        Exercise("ch02.second", "Second", 1.0, ("double",), ""),
    ),
    data=(),
)


def code(source, grade_id=None, setup=False):
    meta = {}
    if grade_id:
        meta["nbgrader"] = {
            "solution": True,
            "grade": False,
            "grade_id": grade_id,
            "locked": False,
            "schema_version": 3,
        }
    if setup:
        meta["tags"] = ["setup"]
    return {"cell_type": "code", "metadata": meta, "source": source, "outputs": [], "execution_count": None}


def notebook(tmp_path, *cells):
    path = tmp_path / "ch02.ipynb"
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def load(tmp_path, *cells):
    return loader.load_notebook(notebook(tmp_path, *cells), CHAPTER)


GOOD_FIRST = code("class GPTDatasetV1:\n    pass\n", "ch02.first")
GOOD_SECOND = code("def double(x):\n    return 2 * x\n", "ch02.second")


def test_only_setup_and_exercise_cells_run(tmp_path):
    sub = load(
        tmp_path,
        code("FACTOR = 3", setup=True),
        code("raise RuntimeError('exploration cells must not run')"),
        GOOD_FIRST,
        code("def double(x):\n    return FACTOR * x\n", "ch02.second"),
    )
    assert not sub.problems and sub.setup_problem is None
    assert sub.double(2) == 6


def test_magics_and_shell_lines_are_skipped(tmp_path):
    sub = load(
        tmp_path,
        code("%matplotlib inline\n!pip install nothing\nX = 1", setup=True),
        code("%%bash\necho hi", setup=True),
        GOOD_FIRST,
        GOOD_SECOND,
    )
    assert sub.setup_problem is None and sub.namespace["X"] == 1


def test_a_python_script_written_with_writefile_runs_as_python_and_its_main_does_not(tmp_path):
    script = '%%writefile train.py\nFACTOR = 3\nif __name__ == "__main__":\n    FACTOR = 0\n'
    sub = load(tmp_path, code(script, setup=True), GOOD_FIRST, GOOD_SECOND)
    assert sub.setup_problem is None and sub.namespace["FACTOR"] == 3


def test_writefile_of_anything_but_a_python_file_is_skipped():
    assert loader.strip_magics("%%writefile notes.txt\nnot python") is None
    assert loader.strip_magics("%%writefile -a train.py\nx = 1") == "\nx = 1"


def test_syntax_error_is_reported_against_its_exercise_only(tmp_path):
    sub = load(tmp_path, GOOD_FIRST, code("def double(x)\n    return x\n", "ch02.second"))
    problem = sub.problems["ch02.second"]
    assert problem.status == "error" and "syntax error on line 1" in str(problem)
    sub.require(CHAPTER.exercises[0])


def test_raising_cell_is_reported_with_its_line(tmp_path):
    sub = load(tmp_path, code("x = 1\nraise ValueError('boom')\n", "ch02.first"), GOOD_SECOND)
    assert "raised ValueError: boom (line 2)" in str(sub.problems["ch02.first"])
    assert "ch02.second" not in sub.problems


def test_deleted_cell_is_missing(tmp_path):
    sub = load(tmp_path, GOOD_SECOND)
    assert sub.problems["ch02.first"].status == "missing"


def test_duplicated_cell_is_an_error(tmp_path):
    sub = load(tmp_path, GOOD_FIRST, GOOD_FIRST, GOOD_SECOND)
    assert sub.problems["ch02.first"].status == "error" and "two cells" in str(sub.problems["ch02.first"])


def test_misspelt_name_is_named_with_the_close_match(tmp_path):
    sub = load(tmp_path, code("class GPTDataSetV1:\n    pass\n", "ch02.first"), GOOD_SECOND)
    try:
        sub.require(CHAPTER.exercises[0])
    except loader.ExerciseUnavailable as exc:
        assert exc.status == "missing"
        assert str(exc) == "no class named GPTDatasetV1; found GPTDataSetV1"
    else:
        raise AssertionError("a misspelt class must make the exercise unavailable")


def test_malformed_json_makes_every_exercise_an_error(tmp_path):
    path = tmp_path / "ch02.ipynb"
    path.write_text('{"cells": [')
    sub = loader.load_notebook(path, CHAPTER)
    assert sub.setup_problem and "not a readable notebook" in sub.setup_problem


def test_failing_setup_cell_is_reported(tmp_path):
    sub = load(tmp_path, code("import no_such_module_here", setup=True), GOOD_FIRST, GOOD_SECOND)
    assert "setup cell 1 raised ModuleNotFoundError" in sub.setup_problem


def test_cell_output_does_not_reach_stdout(tmp_path, capsys):
    load(tmp_path, code("print('noise')", setup=True), GOOD_FIRST, GOOD_SECOND)
    assert capsys.readouterr().out == ""


def test_strip_magics_keeps_line_numbers():
    assert loader.strip_magics("%time x\ny = 1\n!ls") == "\ny = 1\n"
    assert loader.strip_magics("%%timeit\nx") is None
