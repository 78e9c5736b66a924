"""course.toml is validated into typed objects with errors naming file, key and expectation."""

from __future__ import annotations

import pytest

from autograder import manifest

GOOD = """
[course]
title = "T"
version = "1"
[limits]
exercise_timeout_s = 10
memory_mb = 512
[[chapters]]
id = "ch02"
title = "Text"
[[chapters.exercises]]
id = "ch02.thing"
title = "A thing"
points = 2
names = ["Thing"]
"""


def write(tmp_path, text):
    path = tmp_path / "course.toml"
    path.write_text(text)
    return path


def test_the_course_manifest_parses():
    course = manifest.load()
    assert course.chapters[0].id == "ch01"  # the book's appendix A, where a reader new to PyTorch starts
    assert all(ex.points > 0 and ex.names for ex in course.exercises())


def test_exercise_knows_its_chapter_and_marker(tmp_path):
    course = manifest.parse(write(tmp_path, GOOD))
    ex = course.exercise("ch02.thing")
    assert (ex.chapter_id, ex.marker, ex.points, ex.names) == ("ch02", "ch02_thing", 2.0, ("Thing",))
    assert course.chapter("ch02").max_score == 2.0


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("points = 2", 'points = "two"', "chapters[0].exercises[0].points"),
        ("points = 2", "points = -1", "chapters[0].exercises[0].points"),
        ('id = "ch02.thing"', 'id = "ch03.thing"', "chapters[0].exercises[0].id"),
        ('names = ["Thing"]', "names = []", "chapters[0].exercises[0].names"),
        ("memory_mb = 512", 'memory_mb = "lots"', "limits.memory_mb"),
        ('id = "ch02"\n', 'id = "chapter2"\n', "chapters[0].id"),
        ('title = "A thing"\n', "", "chapters[0].exercises[0].title"),
    ],
)
def test_malformed_manifest_names_file_key_and_expectation(tmp_path, old, new, key):
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(manifest.ManifestError) as err:
        manifest.parse(path)
    assert str(path) in str(err.value) and f"'{key}'" in str(err.value) and "should be" in str(err.value)


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    path = write(tmp_path, "[course\n")
    with pytest.raises(manifest.ManifestError, match="not valid TOML"):
        manifest.parse(path)


def test_duplicate_exercise_ids_are_rejected(tmp_path):
    text = GOOD + GOOD[GOOD.index("[[chapters.exercises]]") :]
    with pytest.raises(manifest.ManifestError, match="appears twice"):
        manifest.parse(write(tmp_path, text))


def test_uses_must_name_an_earlier_exercise_of_the_chapter(tmp_path):
    later = GOOD + GOOD[GOOD.index("[[chapters.exercises]]") :].replace("ch02.thing", "ch02.other")
    uses_earlier = later[: later.rindex('names = ["Thing"]')] + later[later.rindex('names = ["Thing"]') :].replace(
        'names = ["Thing"]', 'names = ["Thing"]\nuses = ["ch02.thing"]', 1
    )
    assert manifest.parse(write(tmp_path, uses_earlier)).exercise("ch02.other").uses == ("ch02.thing",)
    uses_later = later.replace('names = ["Thing"]', 'names = ["Thing"]\nuses = ["ch02.other"]', 1)
    with pytest.raises(manifest.ManifestError, match="not an earlier exercise"):
        manifest.parse(write(tmp_path, uses_later))
    uses_other_chapter = GOOD.replace('names = ["Thing"]', 'names = ["Thing"]\nuses = ["ch03.thing"]', 1)
    with pytest.raises(manifest.ManifestError, match="'chapters\\[0\\].exercises\\[0\\].uses'"):
        manifest.parse(write(tmp_path, uses_other_chapter))


def test_the_course_names_what_later_exercises_build_on():
    course = manifest.load()
    assert course.exercise("ch04.gpt_model").uses == ("ch04.layer_norm", "ch04.transformer_block")
