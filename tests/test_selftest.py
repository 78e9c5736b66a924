"""The checks are proven: the reference full, the stubs zero, mutants caught, alternatives accepted."""

from __future__ import annotations

import pytest

from autograder import manifest, paths, selftest
from llmcourse import data

COURSE = manifest.load()
CHAPTERS = [chapter.id for chapter in COURSE.chapters]


def selftest_holds(chapter_id: str, seed: int) -> None:
    if not paths.solution_notebook(chapter_id).exists():
        pytest.skip("needs solutions/")
    missing = [name for name in COURSE.chapter(chapter_id).check_data if not data.is_available(name)]
    if missing:
        pytest.skip(f"its checks need {', '.join(missing)} (course data fetch, or ../shared/data)")
    report = selftest.selftest_chapter(COURSE, chapter_id, seed=seed)
    assert report.ok, "\n".join(report.problems)
    assert report.killed == report.mutants >= 3 * len(COURSE.chapter(chapter_id).exercises)


# Chapter 1's DDP mutants each start real process groups, and those that hang wait out their
# timeouts: its self-test takes minutes, so it runs with the slow tests (on every seed there too).
SLOW_SELFTESTS = {"ch01", "ch15"}


@pytest.mark.parametrize(
    "chapter_id", [pytest.param(ch, marks=pytest.mark.slow) if ch in SLOW_SELFTESTS else ch for ch in CHAPTERS]
)
def test_chapter_selftest_holds(chapter_id):
    selftest_holds(chapter_id, seed=0)


# The hidden checks cover every case on every seed: the seed varies values and sizes, never which
# behaviours are exercised, so every mutant is caught whatever the grading seed.
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("chapter_id", CHAPTERS)
def test_chapter_selftest_holds_on_every_seed(chapter_id, seed):
    selftest_holds(chapter_id, seed)


def test_mutant_that_no_longer_applies_is_reported():
    mutant = selftest.Mutant("gone", (("not in the source", "anything"),), "ch02.x")
    with pytest.raises(selftest.MutantError, match="occurs 0 times"):
        selftest.mutant_source("def f():\n    return 1\n", mutant)
