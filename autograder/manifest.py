"""`course.toml`, validated into typed objects.

Every problem is reported as a `ManifestError` that names the file, the key and
what was expected, so a typo in the manifest is fixed in one look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from . import paths

CHAPTER_ID = re.compile(r"^ch\d\d$")
EXERCISE_ID = re.compile(r"^(ch\d\d)\.[a-z][a-z0-9_]*$")


class ManifestError(Exception):
    """`course.toml` is missing, unreadable or does not match the expected schema."""


@dataclass(frozen=True)
class Limits:
    exercise_timeout_s: float
    memory_mb: int


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    points: float
    names: tuple[str, ...]
    hint: str
    # Earlier exercises of the same chapter this one builds on (`GPTModel` uses `LayerNorm`).
    uses: tuple[str, ...] = ()

    @property
    def chapter_id(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def marker(self) -> str:
        """The pytest marker of this exercise's checks (`ch02.gpt_dataset` -> `ch02_gpt_dataset`)."""
        return self.id.replace(".", "_")

    @property
    def grade_id(self) -> str:
        """The nbgrader `grade_id` of the exercise's cell: nbgrader allows no dots, so `ch02_gpt_dataset`."""
        return self.marker


@dataclass(frozen=True)
class Chapter:
    id: str
    title: str
    exercises: tuple[Exercise, ...]
    data: tuple[str, ...]
    # What the chapter's checks need (a subset of `data`): grading refuses to start without it.
    check_data: tuple[str, ...] = ()
    # Its reference notebook trains a model for minutes: the course's tests run it with the slow ones.
    trains: bool = False

    @property
    def max_score(self) -> float:
        return sum(ex.points for ex in self.exercises)

    def exercise(self, exercise_id: str) -> Exercise:
        for ex in self.exercises:
            if ex.id == exercise_id:
                return ex
        raise KeyError(exercise_id)


@dataclass(frozen=True)
class Course:
    title: str
    version: str
    limits: Limits
    chapters: tuple[Chapter, ...]
    source: Path

    def chapter(self, chapter_id: str) -> Chapter:
        for chapter in self.chapters:
            if chapter.id == chapter_id:
                return chapter
        raise KeyError(chapter_id)

    def exercise(self, exercise_id: str) -> Exercise:
        for chapter in self.chapters:
            for ex in chapter.exercises:
                if ex.id == exercise_id:
                    return ex
        raise KeyError(exercise_id)

    def exercises(self) -> list[Exercise]:
        return [ex for chapter in self.chapters for ex in chapter.exercises]


class _Reader:
    """Typed access to a TOML table that reports the file and dotted key on error."""

    def __init__(self, source: Path, table: dict, where: str):
        self.source, self.table, self.where = source, table, where

    def error(self, key: str, expected: str) -> ManifestError:
        found = self.table.get(key, "nothing")
        return ManifestError(f"{self.source}: key '{self.where}{key}' should be {expected}; found {found!r}")

    def get(self, key: str, kind: type | tuple[type, ...], expected: str, default=None):
        if key not in self.table:
            if default is not None:
                return default
            raise self.error(key, expected)
        value = self.table[key]
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.error(key, expected)
        return value

    def sub(self, key: str, value: dict) -> _Reader:
        return _Reader(self.source, value, f"{self.where}{key}.")


def _exercise(reader: _Reader, chapter_id: str) -> Exercise:
    ex_id = reader.get("id", str, "an exercise id like 'ch02.gpt_dataset'")
    match = EXERCISE_ID.match(ex_id)
    if not match or match.group(1) != chapter_id:
        raise reader.error("id", f"an exercise id '{chapter_id}.snake_name'")
    points = reader.get("points", (int, float), "a positive number of points")
    if points <= 0:
        raise reader.error("points", "a positive number of points")
    names = reader.get("names", list, "a non-empty list of the names the exercise defines")
    if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
        raise reader.error("names", "a non-empty list of Python identifiers")
    uses = reader.get("uses", list, "a list of exercise ids of the same chapter", default=[])
    if not all(isinstance(u, str) and u.startswith(f"{chapter_id}.") and u != ex_id for u in uses):
        raise reader.error("uses", f"a list of other exercise ids of chapter {chapter_id}")
    return Exercise(
        id=ex_id,
        title=reader.get("title", str, "a title string"),
        points=float(points),
        names=tuple(names),
        hint=reader.get("hint", str, "a hint string", default=""),
        uses=tuple(uses),
    )


def _chapter(reader: _Reader) -> Chapter:
    chapter_id = reader.get("id", str, "a chapter id like 'ch02'")
    if not CHAPTER_ID.match(chapter_id):
        raise reader.error("id", "a chapter id like 'ch02'")
    raw_exercises = reader.get("exercises", list, "a list of [[chapters.exercises]] tables")
    exercises = []
    for i, table in enumerate(raw_exercises):
        if not isinstance(table, dict):
            raise reader.error("exercises", "a list of [[chapters.exercises]] tables")
        exercises.append(_exercise(reader.sub(f"exercises[{i}]", table), chapter_id))
    seen = set()
    for ex in exercises:
        if ex.id in seen:
            raise ManifestError(f"{reader.source}: exercise id '{ex.id}' appears twice")
        unknown = [u for u in ex.uses if u not in seen]
        if unknown:
            raise ManifestError(
                f"{reader.source}: exercise '{ex.id}' uses '{unknown[0]}', which is not an earlier exercise of its chapter"
            )
        seen.add(ex.id)
    data = reader.get("data", list, "a list of data file or group names", default=[])
    check_data = reader.get("check_data", list, "a list of data file or group names", default=[])
    outside = [name for name in check_data if name not in data]
    if outside:
        raise ManifestError(
            f"{reader.source}: chapter '{chapter_id}' lists '{outside[0]}' in check_data but not in data"
        )
    return Chapter(
        id=chapter_id,
        title=reader.get("title", str, "a title string"),
        exercises=tuple(exercises),
        data=tuple(data),
        check_data=tuple(check_data),
        trains=reader.get("trains", bool, "true or false", default=False),
    )


def parse(source: Path) -> Course:
    """Read and validate a manifest file."""
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(
            f"{source}: no course manifest here; run from the course folder or set COURSE_ROOT"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{source}: not valid TOML: {exc}") from None
    top = _Reader(source, raw, "")
    course = top.sub("course", top.get("course", dict, "a [course] table with title and version"))
    title = course.get("title", str, "a title string")
    version = course.get("version", str, "a version string")
    limits = top.sub("limits", top.get("limits", dict, "a [limits] table"))
    raw_chapters = top.get("chapters", list, "a list of [[chapters]] tables")
    chapters = []
    for i, table in enumerate(raw_chapters):
        if not isinstance(table, dict):
            raise top.error("chapters", "a list of [[chapters]] tables")
        chapters.append(_chapter(top.sub(f"chapters[{i}]", table)))
    timeout = limits.get("exercise_timeout_s", (int, float), "a positive number of seconds")
    memory = limits.get("memory_mb", int, "a positive whole number of megabytes")
    if timeout <= 0:
        raise limits.error("exercise_timeout_s", "a positive number of seconds")
    if memory <= 0:
        raise limits.error("memory_mb", "a positive whole number of megabytes")
    return Course(
        title=title,
        version=version,
        limits=Limits(exercise_timeout_s=float(timeout), memory_mb=memory),
        chapters=tuple(chapters),
        source=source,
    )


@cache
def _load_cached(source: Path) -> Course:
    return parse(source)


def load(source: Path | None = None) -> Course:
    """The course manifest (`course.toml` at the course root unless `source` is given)."""
    return _load_cached((source or paths.manifest_path()).resolve())
