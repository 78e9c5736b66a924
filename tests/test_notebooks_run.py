"""Every chapter notebook runs top to bottom in a real Jupyter kernel, offline.

The reference notebooks run without an error; the student notebooks fail only
where a stub is called (NotImplementedError), where a check cell reports it, or
where a cell needs a name that a cell stopped by a stub did not get to define.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from autograder import manifest, paths

CHAPTERS = [ch.id for ch in manifest.load().chapters if paths.solution_notebook(ch.id).exists()]
# Reference notebooks that train a model for minutes (`trains` in course.toml); they run with the slow tests.
TRAINING_CHAPTERS = {ch.id for ch in manifest.load().chapters if ch.trains}


def execute(path, allow_errors: bool):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return notebook


def errors(notebook):
    return [
        (i, out.get("ename"), out.get("evalue", "")[:200])
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]


@pytest.mark.parametrize(
    "chapter", [pytest.param(ch, marks=pytest.mark.slow) if ch in TRAINING_CHAPTERS else ch for ch in CHAPTERS]
)
def test_reference_notebook_runs_top_to_bottom(chapter, needs_gpt2_files):
    notebook = execute(paths.solution_notebook(chapter), allow_errors=False)
    images = sum(1 for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images >= 1, "the chapter should show at least one picture"


def _left_undefined_by_an_earlier_failure(notebook, error) -> bool:
    """A NameError for a name that an earlier failing cell was about to define (a stub stopped it)."""
    index, ename, evalue = error
    match = re.match(r"name '(\w+)' is not defined", evalue)
    if ename != "NameError" or not match:
        return False
    assigns = re.compile(
        rf"^\s*(?:[\w, ]*\b{match.group(1)}\b[^=\n]*=|.*\bfor {match.group(1)}\b|def {match.group(1)}\b)", re.M
    )
    return any(i < index and assigns.search(notebook.cells[i].source) for i, _, _ in errors(notebook))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_student_notebook_fails_only_at_stubs(chapter, needs_gpt2_files):
    notebook = execute(paths.student_notebook(chapter), allow_errors=True)
    unexpected = [
        e
        for e in errors(notebook)
        if e[1] not in ("NotImplementedError", "AssertionError")
        and not _left_undefined_by_an_earlier_failure(notebook, e)
    ]
    assert not unexpected, unexpected
