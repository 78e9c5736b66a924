"""From check outcomes to exercise, chapter and course scores.

An exercise's points are shared equally among its checks that ran (skipped
checks do not count), so a partly right exercise earns partial credit. Its
status is the most telling outcome among its checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .manifest import Chapter, Exercise

STATUSES = ("passed", "failed", "error", "not_implemented", "missing")
SKIPPED = "skipped"
# When checks of one exercise end differently, the report shows the first of these that occurred.
_PRECEDENCE = ("missing", "error", "not_implemented", "failed")


@dataclass(frozen=True)
class CheckResult:
    """One check (a pytest test) of one exercise."""

    exercise_id: str
    name: str
    outcome: str  # one of STATUSES or SKIPPED
    message: str = ""
    visibility: str = "public"  # or "hidden"
    seconds: float = 0.0
    check_id: str = ""  # module::test function


@dataclass
class ExerciseResult:
    exercise: Exercise
    checks: list[CheckResult] = field(default_factory=list)
    status: str = "passed"
    score: float = 0.0
    message: str = ""

    @property
    def max_score(self) -> float:
        return self.exercise.points

    def to_json(self) -> dict:
        return {
            "id": self.exercise.id,
            "title": self.exercise.title,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "message": self.message,
        }


@dataclass
class ChapterResult:
    chapter: Chapter
    exercises: list[ExerciseResult]

    @property
    def score(self) -> float:
        return round(sum(ex.score for ex in self.exercises), 6)

    @property
    def max_score(self) -> float:
        return sum(ex.max_score for ex in self.exercises)

    def to_json(self) -> dict:
        return {
            "id": self.chapter.id,
            "score": self.score,
            "max_score": self.max_score,
            "exercises": [ex.to_json() for ex in self.exercises],
        }


@dataclass
class CourseResult:
    chapters: list[ChapterResult]

    @property
    def score(self) -> float:
        return round(sum(ch.score for ch in self.chapters), 6)

    @property
    def max_score(self) -> float:
        return sum(ch.max_score for ch in self.chapters)

    @property
    def full_marks(self) -> bool:
        return all(ex.status == "passed" for ch in self.chapters for ex in ch.exercises)

    def to_json(self) -> dict:
        return {"score": self.score, "max_score": self.max_score, "chapters": [ch.to_json() for ch in self.chapters]}


def score_exercise(exercise: Exercise, checks: list[CheckResult], failing_uses: tuple[str, ...] = ()) -> ExerciseResult:
    """Combine the outcomes of one exercise's checks.

    `failing_uses` names the classes or functions of the exercises this one builds
    on that fall short themselves; a shortfall here then points to them first.
    """
    result = ExerciseResult(exercise=exercise, checks=checks)
    counted = [c for c in checks if c.outcome != SKIPPED]
    if not counted:
        reasons = [c.message for c in checks if c.message]
        result.status = "error"
        result.message = "could not be checked: " + (reasons[0] if reasons else "no checks were found for it")
        return result
    passed = [c for c in counted if c.outcome == "passed"]
    result.score = round(exercise.points * len(passed) / len(counted), 2)
    if len(passed) == len(counted):
        return result
    outcomes = {c.outcome for c in counted}
    result.status = next(s for s in _PRECEDENCE if s in outcomes)
    if result.status == "not_implemented" and passed:
        result.status = "failed"  # partly written: some checks already pass
    first = next(c for c in counted if c.outcome != "passed")
    result.message = first.message
    if len(failing_uses) == 1:
        result.message += f"; your {failing_uses[0]} also fails its checks — fix that first"
    elif failing_uses:
        names = ", ".join(failing_uses[:-1]) + f" and {failing_uses[-1]}"
        result.message += f"; your {names} also fail their checks — fix those first"
    if result.status not in ("missing", "not_implemented") and exercise.hint:
        result.message += f" Hint: {exercise.hint}"
    return result


def score_chapter(chapter: Chapter, exercises: list[Exercise], checks: list[CheckResult]) -> ChapterResult:
    """Results for the given exercises of one chapter, in manifest order.

    Checks of exercises they use (`Exercise.uses`) may be among `checks` too: they
    are not scored here, only named when they fail.
    """
    by_exercise: dict[str, list[CheckResult]] = {}
    for check in checks:
        by_exercise.setdefault(check.exercise_id, []).append(check)
    results = []
    for ex in exercises:
        failing_uses = tuple(
            chapter.exercise(used).names[0]
            for used in ex.uses
            if any(c.outcome not in ("passed", SKIPPED) for c in by_exercise.get(used, []))
        )
        results.append(score_exercise(ex, by_exercise.get(ex.id, []), failing_uses))
    return ChapterResult(chapter, results)
