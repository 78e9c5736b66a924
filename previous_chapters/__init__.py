"""Earlier chapters' code for the chapters that build on it: `from previous_chapters import MultiHeadAttention`.

A name comes from the chapter whose exercise defines it (or, failing that, the
first chapter whose setup cells do), loaded from the reference notebook in
`solutions/` when the course has one, else from your own notebook in
`chapters/`. With the reference, a mistake left in chapter 3 never breaks or
costs points in chapter 4.
"""

from __future__ import annotations

from autograder import loader, manifest, paths

_loaded: dict[str, loader.LoadedNotebook] = {}
_withheld: set[str] = set()


def chapter(chapter_id: str) -> loader.LoadedNotebook:
    """Chapter `chapter_id`'s setup and exercise cells, loaded once per process."""
    if chapter_id in _withheld:
        raise ImportError(f"{chapter_id}'s code cannot be imported while {chapter_id} itself is graded")
    if chapter_id not in _loaded:
        course = manifest.load()
        path = paths.solution_notebook(chapter_id)
        if not path.exists():
            path = paths.student_notebook(chapter_id)
        _loaded[chapter_id] = loader.load_notebook(path, course.chapter(chapter_id))
    return _loaded[chapter_id]


def withhold(chapter_id: str) -> bool:
    """Forget chapter `chapter_id`'s code and refuse to load it again: a process grading that
    chapter holds no reference version of it. True when its code had been loaded."""
    _withheld.add(chapter_id)
    if chapter_id not in _loaded:
        return False
    loader.unload(_loaded.pop(chapter_id))
    return True


def _defining_exercise(name: str):
    for exercise in manifest.load().exercises():
        if name in exercise.names:
            return exercise
    return None


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    exercise = _defining_exercise(name)
    if exercise is not None:
        submission = chapter(exercise.chapter_id)
        try:
            submission.require(exercise)
        except loader.ExerciseUnavailable as exc:
            raise ImportError(f"{name} ({exercise.id}) cannot be used from {submission.origin}: {exc}") from None
        return submission.namespace[name]
    for course_chapter in manifest.load().chapters:
        namespace = chapter(course_chapter.id).namespace
        if name in namespace and not name.startswith("_"):
            return namespace[name]
    # An ImportError of our own: `from previous_chapters import X` would turn an AttributeError into a vaguer one.
    raise ImportError(f"no earlier chapter defines {name}", name=name)
