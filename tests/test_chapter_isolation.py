"""Later chapters build on earlier chapters' reference code, and a failure names the failing parts it builds on."""

from __future__ import annotations

import json
import shutil

import pytest

import previous_chapters
from autograder import checking, loader, manifest, paths, selftest

REFERENCE = {chapter: paths.solution_notebook(chapter) for chapter in ("ch03", "ch04")}


@pytest.fixture(scope="module")
def course():
    if not all(path.exists() for path in REFERENCE.values()):
        pytest.skip("needs solutions/ch03 and solutions/ch04")
    return manifest.load()


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """An empty course folder with this course's manifest; previous_chapters reads it fresh."""
    shutil.copy(paths.manifest_path(), tmp_path / "course.toml")
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    monkeypatch.setattr(previous_chapters, "_loaded", {})
    return tmp_path


def _notebook_with_broken_attention(course) -> list:
    cells = loader.read_notebook(REFERENCE["ch03"])["cells"]
    chapter = course.chapter("ch03")
    source = loader.cell_source(cells[loader.cell_index(cells, chapter, "ch03.multihead_attention")])
    no_mask = (("scores = scores.masked_fill(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)\n", ""),)
    broken = selftest.mutant_source(source, selftest.Mutant("no mask", no_mask, "ch03.multihead_attention"))
    return loader.with_cell_source(cells, chapter, "ch03.multihead_attention", broken)


def test_chapter_4_uses_the_reference_attention_whatever_chapter_3_holds(course, course_copy):
    (course_copy / "solutions" / "ch03").mkdir(parents=True)
    shutil.copy(REFERENCE["ch03"], course_copy / "solutions" / "ch03" / "ch03.ipynb")
    broken = {"cells": _notebook_with_broken_attention(course), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (course_copy / "chapters" / "ch03").mkdir(parents=True)
    (course_copy / "chapters" / "ch03" / "ch03.ipynb").write_text(json.dumps(broken))

    ch04 = loader.load_notebook(REFERENCE["ch04"], course.chapter("ch04"))
    assert ch04.MultiHeadAttention is previous_chapters.chapter("ch03").MultiHeadAttention
    assert previous_chapters.chapter("ch03").origin.endswith("solutions/ch03/ch03.ipynb")
    result = checking.check_submissions(course, {"ch04": ch04}, list(course.chapter("ch04").exercises))
    assert result.full_marks


def test_without_solutions_earlier_chapters_come_from_your_own_notebooks(course, course_copy):
    (course_copy / "chapters" / "ch03").mkdir(parents=True)
    shutil.copy(REFERENCE["ch03"], course_copy / "chapters" / "ch03" / "ch03.ipynb")
    assert previous_chapters.chapter("ch03").origin.endswith("chapters/ch03/ch03.ipynb")
    assert previous_chapters.MultiHeadAttention.__name__ == "MultiHeadAttention"


def test_a_name_no_chapter_defines_is_an_import_error(course):
    with pytest.raises(ImportError, match="no earlier chapter defines NoSuchThing"):
        from previous_chapters import NoSuchThing  # noqa: F401


def test_a_failing_building_block_is_named_in_the_dependent_exercise(course):
    chapter = course.chapter("ch04")
    cells = loader.read_notebook(REFERENCE["ch04"])["cells"]
    source = loader.cell_source(cells[loader.cell_index(cells, chapter, "ch04.layer_norm")])
    cells = loader.with_cell_source(
        cells, chapter, "ch04.layer_norm", source.replace("unbiased=False", "unbiased=True")
    )
    result = checking.check_submissions(
        course, {"ch04": loader.load_cells(cells, chapter)}, [course.exercise("ch04.gpt_model")]
    )
    (gpt,) = result.chapters[0].exercises
    assert gpt.status == "failed" and 0 < gpt.score < gpt.max_score
    assert "your LayerNorm and TransformerBlock also fail their checks — fix those first" in gpt.message


@pytest.mark.parametrize("imported", ["F.scaled_dot_product_attention", "scaled_dot_product_attention"])
def test_ready_made_attention_is_refused_with_a_clear_message(course, imported):
    chapter = course.chapter("ch03")
    cells = loader.read_notebook(REFERENCE["ch03"])["cells"]
    cheat = f"""
import torch.nn.functional as F
from torch.nn.functional import scaled_dot_product_attention


class CausalAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, qkv_bias=False):
        super().__init__()
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.p = dropout

    def forward(self, x):
        return {imported}(self.W_query(x), self.W_key(x), self.W_value(x), is_causal=True,
                          dropout_p=self.p if self.training else 0.0)
"""
    cells = loader.with_cell_source(cells, chapter, "ch03.causal_attention", cheat)
    result = checking.check_submissions(
        course, {"ch03": loader.load_cells(cells, chapter)}, [course.exercise("ch03.causal_attention")]
    )
    (causal,) = result.chapters[0].exercises
    assert causal.status == "failed" and causal.score == 0
    assert "written from scratch" in causal.message and "scaled_dot_product_attention" in causal.message
