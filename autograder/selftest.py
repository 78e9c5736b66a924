"""Check the checks: the reference earns full marks, the stubs zero, every mutant
loses points on its exercise with a specific message, and every alternative correct
implementation earns full marks. All are graded as an instructor grades: public and
hidden checks, the hidden ones on inputs drawn from the self-test's seed.

Both live in the chapter's instructor folder. A mutant is the reference exercise cell
with one realistic mistake written in (a list of `(old, new)` replacements), listed
under its exercise in `instructor/chNN/mutants.py`. An alternative is a whole cell
written another way: a module `instructor/chNN/alternatives/<exercise>/<name>.py`
whose docstring says how it differs.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

from . import loader, paths
from .checking import check_submissions
from .instructor_only import instructor_module
from .manifest import Course, Exercise
from .scoring import SKIPPED, ExerciseResult


@dataclass(frozen=True)
class Mutant:
    """A realistic mistake: `replacements` applied to the reference cell of `exercise_id`
    (the exercise it is listed under in its chapter's `MUTANTS`)."""

    description: str
    replacements: tuple[tuple[str, str], ...]
    exercise_id: str = ""


@dataclass(frozen=True)
class Alternative:
    """A correct implementation of `exercise_id` written differently from the reference."""

    exercise_id: str
    description: str
    source: str


@dataclass
class SelftestReport:
    chapter_id: str
    problems: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    mutants: int = 0
    killed: int = 0
    named: int = 0  # killed with a message that names the mutant's own mistake (`autograder.mistakes`)

    @property
    def ok(self) -> bool:
        return not self.problems


class MutantError(Exception):
    """A mutant's replacement no longer matches the reference cell."""


def mutant_source(source: str, mutant: Mutant) -> str:
    for old, new in mutant.replacements:
        if source.count(old) != 1:
            raise MutantError(
                f"mutant '{mutant.description}': {old!r} occurs {source.count(old)} times in the "
                f"{mutant.exercise_id} reference cell (needs exactly once)"
            )
        source = source.replace(old, new)
    return source


def _reference_cell(course: Course, cells: list, exercise: Exercise) -> str:
    index = loader.cell_index(cells, course.chapter(exercise.chapter_id), exercise.id)
    if index is None:
        raise MutantError(f"the reference notebook has no cell for {exercise.id}")
    return loader.cell_source(cells[index])


def mutated_notebook(course: Course, mutant: Mutant) -> dict:
    """The reference notebook of the mutant's chapter (nbformat JSON) with the mutant applied to its exercise cell."""
    exercise = course.exercise(mutant.exercise_id)
    notebook = loader.read_notebook(paths.solution_notebook(exercise.chapter_id))
    source = mutant_source(_reference_cell(course, notebook["cells"], exercise), mutant)
    notebook["cells"] = loader.with_cell_source(
        notebook["cells"], course.chapter(exercise.chapter_id), exercise.id, source
    )
    return notebook


def _check_one(
    course: Course, exercise: Exercise, reference: list, source: str, origin: str, seed: int
) -> ExerciseResult:
    """Score `exercise`, public and hidden checks, on the reference notebook with its cell replaced by `source`."""
    chapter = course.chapter(exercise.chapter_id)
    cells = loader.with_cell_source(reference, chapter, exercise.id, source)
    submission = loader.load_cells(cells, chapter, origin=origin)
    result = check_submissions(course, {chapter.id: submission}, [exercise], hidden=True, seed=seed)
    return result.chapters[0].exercises[0]


def mutants(chapter_id: str) -> list[Mutant]:
    """The chapter's mutants, each knowing its exercise."""
    listed = instructor_module(chapter_id, "mutants").MUTANTS
    return [
        dataclasses.replace(mutant, exercise_id=exercise_id) for exercise_id, own in listed.items() for mutant in own
    ]


def alternatives(chapter_id: str) -> list[Alternative]:
    """The chapter's alternatives, read from `instructor/chNN/alternatives/<exercise>/*.py`."""
    found = []
    for path in sorted((paths.instructor_dir(chapter_id) / "alternatives").glob("*/*.py")):
        source = path.read_text(encoding="utf-8")
        description = ast.get_docstring(ast.parse(source))
        if not description:
            raise MutantError(f"{path} has no docstring: it says how the alternative differs")
        found.append(Alternative(f"{chapter_id}.{path.parent.name}", description, source))
    return found


def suite(chapter_id: str) -> tuple[list[Mutant], list[Alternative]]:
    return mutants(chapter_id), alternatives(chapter_id)


def selftest_chapter(course: Course, chapter_id: str, progress=None, seed: int = 0) -> SelftestReport:
    """Run the whole self-test of one chapter, the hidden checks drawing from `seed`;
    `progress(n)` is called after each step."""
    chapter = course.chapter(chapter_id)
    out = SelftestReport(chapter_id)
    step = progress or (lambda n=1: None)
    reference = loader.read_notebook(paths.solution_notebook(chapter_id))["cells"]
    exercises = list(chapter.exercises)

    loaded = loader.load_cells(reference, chapter, "solutions")
    full = check_submissions(course, {chapter_id: loaded}, exercises, hidden=True, seed=seed)
    for ex in full.chapters[0].exercises:
        if ex.status != "passed":
            out.problems.append(f"reference {ex.exercise.id}: {ex.status} {ex.score:g}/{ex.max_score:g}: {ex.message}")
        for check in ex.checks:
            if check.outcome == SKIPPED:  # a self-test with checks left out proves less than it claims
                out.problems.append(f"reference {ex.exercise.id}: check '{check.name}' was skipped: {check.message}")
    step()

    stubs = loader.load_notebook(paths.student_notebook(chapter_id), chapter)
    for ex in check_submissions(course, {chapter_id: stubs}, exercises, hidden=True, seed=seed).chapters[0].exercises:
        if ex.score != 0 or ex.status != "not_implemented":
            out.problems.append(f"stub {ex.exercise.id}: {ex.status} {ex.score:g} points (needs not_implemented, 0)")
    step()

    chapter_mutants, chapter_alternatives = suite(chapter_id)
    for exercise in exercises:
        own = [m for m in chapter_mutants if m.exercise_id == exercise.id]
        if len(own) < 3:
            out.problems.append(f"{exercise.id}: only {len(own)} mutants (needs at least 3)")
        if not any(a.exercise_id == exercise.id for a in chapter_alternatives):
            out.problems.append(f"{exercise.id}: no alternative-correct implementation")

    for mutant in chapter_mutants:
        exercise = course.exercise(mutant.exercise_id)
        out.mutants += 1
        try:
            source = mutant_source(_reference_cell(course, reference, exercise), mutant)
        except MutantError as exc:
            out.problems.append(str(exc))
            step()
            continue
        result = _check_one(course, exercise, reference, source, f"mutant of {exercise.id}", seed)
        killed = result.score < result.max_score and result.status in ("failed", "error") and result.message
        out.killed += bool(killed)
        named = bool(killed) and mutant.description in result.message
        out.named += named
        mark = ("named  " if named else "killed ") if killed else "SURVIVED"
        out.lines.append(
            f"  {mark} {exercise.id}: {mutant.description} -> {result.score:g}/{result.max_score:g} {result.message[:150]}"
        )
        if not killed:
            out.problems.append(
                f"mutant survived: {exercise.id}: {mutant.description} ({result.status}, {result.score:g} points)"
            )
        step()

    for alternative in chapter_alternatives:
        exercise = course.exercise(alternative.exercise_id)
        result = _check_one(course, exercise, reference, alternative.source, f"alternative for {exercise.id}", seed)
        ok = result.status == "passed"
        out.lines.append(
            f"  {'full   ' if ok else 'REJECTED'} {exercise.id}: {alternative.description} -> {result.score:g}/{result.max_score:g} {result.message[:150]}"
        )
        if not ok:
            out.problems.append(f"alternative rejected: {exercise.id}: {alternative.description}: {result.message}")
        step()
    return out


def steps(chapter_id: str) -> int:
    chapter_mutants, chapter_alternatives = suite(chapter_id)
    return 2 + len(chapter_mutants) + len(chapter_alternatives)
