"""Checks, public and hidden, run in three steps: the grader draws the case, the submission's
process only produces outputs, and the grader decides the check (against the live reference,
for a hidden one)."""

from __future__ import annotations

import dataclasses
import importlib
import io
import json

import pytest
import torch

from autograder import loader, manifest, paths, runner, split
from autograder.compare import CheckFailure
from autograder.grading import batch, verdicts
from autograder.grading.verdicts import SplitChecks
from autograder.instructor_only import instructor_module

CHAPTERS = [chapter.id for chapter in manifest.load().chapters]


@pytest.fixture(scope="module")
def course():
    if not paths.solution_notebook("ch03").exists():
        pytest.skip("needs solutions/")
    return manifest.load()


@pytest.fixture(scope="module")
def ch03(course) -> SplitChecks:
    return SplitChecks(course, ["ch03"], seed=11)


def produce(course, ch03: SplitChecks, notebook) -> tuple[list, dict[str, bytes]]:
    """What a submission's process reports for chapter 3: the checks, and the split checks' outputs."""
    submission = loader.load_notebook(notebook, course.chapter("ch03"))
    produced: dict[str, bytes] = {}
    checks = runner.run_checks(
        course,
        {"ch03": submission},
        list(course.chapter("ch03").exercises),
        hidden=True,
        seed=11,
        cases=ch03.cases,
        produced=produced,
    )
    return checks, produced


@pytest.fixture(scope="module")
def reference_report(course, ch03):
    return produce(course, ch03, paths.solution_notebook("ch03"))


def hidden(checks):
    return [c for c in checks if c.visibility == "hidden"]


def check_modules(chapter_id: str) -> list:
    modules = [importlib.import_module(f"autograder.checks.test_{chapter_id}")]
    if paths.hidden_checks(chapter_id).exists():
        modules.append(instructor_module(chapter_id, "hidden"))
    return modules


@pytest.mark.parametrize("chapter_id", CHAPTERS)
def test_every_check_public_and_hidden_is_split(chapter_id):
    for module in check_modules(chapter_id):
        tests = {name for name in vars(module) if name.startswith("test_")}
        found = {key.rsplit("::", 1)[1].partition("[")[0] for key in split.split_checks(module)}
        assert tests and found == tests, module.__name__


def test_the_submissions_process_reports_outputs_not_verdicts(reference_report):
    checks, produced = reference_report
    assert hidden(checks) and all(c.outcome == runner.PRODUCED for c in checks)
    assert set(produced) == {c.check_id for c in checks}


def test_a_verdict_reported_for_a_check_the_grader_does_not_know_is_an_error(course, ch03, reference_report):
    checks, produced = reference_report
    forged = dataclasses.replace(checks[0], outcome="passed", check_id="autograder.checks.test_ch03::test_made_up")
    decided = ch03.complete([*checks, forged], produced, course, ["ch03"])
    assert decided[len(checks)].outcome == "error" and decided[len(checks)].message == verdicts.UNKNOWN_CHECK


def test_the_grader_passes_the_references_outputs(course, ch03, reference_report):
    checks, produced = reference_report
    decided = ch03.complete(checks, produced, course, ["ch03"])
    assert [c.outcome for c in decided] == ["passed"] * len(checks)


def test_wrong_outputs_fail_in_the_grader_with_a_message(course, ch03, reference_report):
    checks, produced = reference_report
    key = next(k for k in produced if k.endswith("test_multihead_attention_agrees_with_reference"))
    outputs = split.loads(produced[key])
    outputs[0]["out"] = outputs[0]["out"] * 1.01
    decided = ch03.complete(checks, {**produced, key: split.dumps(outputs)}, course, ["ch03"])
    failed = [c for c in decided if c.outcome != "passed"]
    assert [c.check_id for c in failed] == [key] and failed[0].outcome == "failed"
    assert "MultiHeadAttention output on a hidden input differs" in failed[0].message


def test_a_check_reported_as_passed_or_skipped_without_outputs_is_an_error(course, ch03, reference_report):
    checks, produced = reference_report
    forged = [dataclasses.replace(c, outcome="passed" if i % 2 else "skipped") for i, c in enumerate(checks)]
    decided = ch03.complete(forged, {}, course, ["ch03"])
    assert {c.outcome for c in decided} == {"error"}
    assert all(c.message == verdicts.WITHOUT_OUTPUTS for c in decided)


@pytest.mark.parametrize("visibility", ["public", "hidden"])
def test_a_check_left_out_of_the_report_is_an_error(course, ch03, reference_report, visibility):
    checks, produced = reference_report
    kept = [c for c in checks if c.visibility != visibility]
    left_out = [c for c in checks if c.visibility == visibility]
    decided = ch03.complete(kept, produced, course, ["ch03"])
    added = decided[len(kept) :]
    assert len(added) == len(left_out) and {c.outcome for c in added} == {"error"}
    assert {(c.exercise_id, c.name, c.visibility) for c in added} == {
        (c.exercise_id, c.name, c.visibility) for c in left_out
    }


class Payload:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_outputs_that_would_make_other_objects_are_refused(course, ch03, reference_report, capsys):
    checks, produced = reference_report
    key = next(iter(produced))
    buffer = io.BytesIO()
    torch.save({"out": Payload()}, buffer)
    decided = ch03.complete(checks, {**produced, key: buffer.getvalue()}, course, ["ch03"])
    refused = next(c for c in decided if c.check_id == key)
    assert refused.outcome == "error" and "unpickled" not in capsys.readouterr().out


def test_a_produce_step_that_returns_an_object_fails_naming_it():
    with pytest.raises(CheckFailure, match=r"the output\['model'\] is a Linear"):
        split.as_data({"model": torch.nn.Linear(2, 2)})


def test_data_crosses_as_plain_tensors_and_containers():
    class Marked(torch.Tensor):
        pass

    data = split.loads(split.dumps(split.as_data({"t": torch.ones(2).as_subclass(Marked), "xs": (1, 2.5, "a", None)})))
    assert type(data["t"]) is torch.Tensor and data["xs"] == (1, 2.5, "a", None)


def test_a_chapter_cannot_import_or_find_its_own_reference_while_it_is_graded(course, tmp_path, monkeypatch):
    """Chapter 4 imports chapter 3's reference, and the server grades both references to warm up;
    a chapter 3 notebook graded with it finds none of it: not by import, in memory or in linecache."""
    if not paths.solution_notebook("ch04").exists():
        pytest.skip("needs solutions/ch04")
    cells = loader.read_notebook(paths.solution_notebook("ch03"))["cells"]
    chapter = course.chapter("ch03")
    cheats = {
        "imports": "from previous_chapters import MultiHeadAttention\n",
        "searches": (
            "import gc\nMultiHeadAttention = next(o for o in gc.get_objects() if isinstance(o, type) "
            "and o.__name__ == 'MultiHeadAttention')\n"
        ),
        # Its cells move one down, so the reference's cell sources keep their names in linecache.
        "reads-sources": (
            "import linecache\n_source = next(''.join(entry[2]) for entry in list(linecache.cache.values())"
            " if 'class MultiHead' + 'Attention(nn' in ''.join(entry[2]))\nexec(_source)\n"
        ),
    }
    for student, source in cheats.items():
        changed = loader.with_cell_source(cells, chapter, "ch03.multihead_attention", source)
        if student == "reads-sources":
            changed.insert(0, {"cell_type": "markdown", "metadata": {}, "source": "My notes"})
        notebook = {"cells": changed, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        for chapter_id, content in (
            ("ch03", notebook),
            ("ch04", loader.read_notebook(paths.solution_notebook("ch04"))),
        ):
            (tmp_path / "in" / student / chapter_id).mkdir(parents=True, exist_ok=True)
            (tmp_path / "in" / student / chapter_id / f"{chapter_id}.ipynb").write_text(json.dumps(content))
    monkeypatch.setattr(batch, "WARM_UP_FROM", 1)  # the server grades the references before it forks
    options = batch.Options(
        submissions=tmp_path / "in", out=tmp_path / "out", workers=2, chapters=["ch03", "ch04"], seed=3, progress=False
    )
    batch.grade_class(course, options)
    for student in cheats:
        record = json.loads((tmp_path / "out" / batch.RECORDS / f"{student}.json").read_text())
        scores = {ex["id"]: ex for ch in record["chapters"] for ex in ch["exercises"]}
        assert scores["ch03.multihead_attention"]["score"] == 0, (student, scores["ch03.multihead_attention"])
        assert scores["ch03.causal_attention"]["status"] == "passed"
        assert record["chapters"][1]["score"] == record["chapters"][1]["max_score"]
