"""Feedback names the mistake: a failing check whose outputs match a catalogued mistake's says
which, from data recorded by `course fixtures`; other failures keep their message."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from autograder import manifest, mistakes, paths
from autograder.compare import CheckFailure
from autograder.selftest import mutants, mutated_notebook


def test_outputs_are_the_same_within_rounding_and_of_the_same_kind():
    assert mistakes.same({"w": torch.tensor([1.0, 2.0]), "n": 3}, {"w": torch.tensor([1.0, 2.0 + 1e-7]), "n": 3})
    assert not mistakes.same(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]))
    assert not mistakes.same(torch.tensor([1, 2]), torch.tensor([1.0, 2.0]))
    assert not mistakes.same([1.0, 2.0], [1.0])
    assert not mistakes.same(1.0, "1.0") and mistakes.same(float("nan"), float("nan"))


def test_a_failure_whose_outputs_match_no_mistake_keeps_its_message():
    failure = CheckFailure("attention_weights differs")
    key = "autograder.checks.test_ch03::test_attention_weights_match_recorded"
    assert mistakes.explained(failure, key, [torch.zeros(3, 3)]) is failure


def test_the_recorded_mistakes_are_data_and_descriptions():
    recorded = mistakes.read("ch03")
    assert recorded, "no mistakes recorded for ch03 (course fixtures ch03)"
    descriptions = {m.description for m in mutants("ch03")}
    assert all(description in descriptions for entries in recorded.values() for description, _ in entries)


@pytest.mark.skipif(not paths.solutions_dir().is_dir(), reason="needs solutions/")
def test_a_catalogued_mistake_is_named_in_a_students_check(tmp_path):
    mutant = next(m for m in mutants("ch03") if m.description.startswith("scores scaled by sqrt(d_in)"))
    notebook = tmp_path / "mine.ipynb"
    notebook.write_text(json.dumps(mutated_notebook(manifest.load(), mutant)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "check", "ch03", "--notebook", str(notebook), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=paths.course_root(),
    )
    exercise = next(e for e in json.loads(done.stdout)["chapters"][0]["exercises"] if e["id"] == mutant.exercise_id)
    assert exercise["score"] < exercise["max_score"] and mutant.description in exercise["message"]


@pytest.mark.skipif(not paths.solutions_dir().is_dir(), reason="needs solutions/")
def test_a_hidden_check_names_the_mistake_its_outputs_match_under_course_grade(tmp_path):
    mutant = next(m for m in mutants("ch03") if m.description.startswith("mask with diagonal=0"))
    handed_in = tmp_path / "submitted" / "ada" / "ch03" / "ch03.ipynb"
    handed_in.parent.mkdir(parents=True)
    handed_in.write_text(json.dumps(mutated_notebook(manifest.load(), mutant)), encoding="utf-8")
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", str(tmp_path / "submitted"), "--out", str(out)]
        + ["--chapters", "ch03", "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=paths.course_root(),
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    feedback = (out / "feedback" / "ada.md").read_text(encoding="utf-8")
    exercise = feedback.split("### ch03.causal_attention")[1].split("###")[0]
    hidden = [line for line in exercise.splitlines() if "hidden check found a difference" in line]
    assert hidden and all(mutant.description in line for line in hidden), exercise
