"""The checks are proven: the reference full, the stubs zero, mutants caught, alternatives accepted."""
from __future__ import annotations

import pytest

from autograder import manifest, paths, selftest


@pytest.fixture(scope="module")
def ch02_report():
    if not paths.solution_notebook("ch02").exists():
        pytest.skip("needs solutions/")
    return selftest.selftest_chapter(manifest.load(), "ch02")


def test_ch02_selftest_holds(needs_gpt2_files, ch02_report):
    assert ch02_report.ok, "\n".join(ch02_report.problems)
    assert ch02_report.killed == ch02_report.mutants >= 18


# Chapters whose mutants (the prompt and the response tokenized apart, say) differ from the
# reference only under GPT-2's merges, not under the byte-level stand-in served without its files.
NEEDS_GPT2_MERGES = {"ch07"}


@pytest.mark.parametrize("chapter_id", ["ch03", "ch04", "ch05", "ch06", "ch07", "ch08", "ch09"])
def test_model_chapter_selftest_holds(chapter_id, request):
    if not paths.solution_notebook(chapter_id).exists():
        pytest.skip("needs solutions/")
    if chapter_id in NEEDS_GPT2_MERGES:
        request.getfixturevalue("needs_gpt2_files")
    course = manifest.load()
    report = selftest.selftest_chapter(course, chapter_id)
    assert report.ok, "\n".join(report.problems)
    assert report.killed == report.mutants >= 3 * len(course.chapter(chapter_id).exercises)


def test_mutant_that_no_longer_applies_is_reported():
    mutant = selftest.Mutant("ch02.x", "gone", (("not in the source", "anything"),))
    with pytest.raises(selftest.MutantError, match="occurs 0 times"):
        selftest.mutant_source("def f():\n    return 1\n", mutant)
