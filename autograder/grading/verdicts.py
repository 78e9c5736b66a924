"""The grader's steps of the split checks (`autograder.split`), public and hidden: draw every
check's case once per run, and decide each check from the outputs a submission produced.

Both steps run in the grader's process, with the references loaded here from solutions/;
a submission's process only runs the produce steps. Its report can only lower a score: a
check that comes back with neither outputs nor a failure of the student's own code is an
error, whatever its report says, and so is any check the grader does not know.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import importlib
import inspect
import threading
import time
from collections.abc import Callable

from .. import loader, mistakes, paths, recording, runner, split
from ..compare import CheckFailure
from ..instructor_only import instructor_module
from ..manifest import Course
from ..runner import check_title, exercise_marker
from ..scoring import CheckResult

# Outcomes a split check may report besides PRODUCED: its produce step failed in student code.
_FAILED_IN_SUBMISSION = ("failed", "error", "not_implemented", "missing")
# Checks seed torch's global generator; one check at a time in this process.
_ONE_AT_A_TIME = threading.Lock()

# What the grader says of a split check its submission's process gave no outputs for; fixed texts,
# so feedback may show them as they are (`results.hidden_message`).
WITHOUT_OUTPUTS = "the submission's process reported this check without the outputs it has to produce"
UNKNOWN_CHECK = "the submission's process reported a check the grader does not know"
NOT_REPORTED = "the submission's process did not report this check"
GRADER_MESSAGES = frozenset({WITHOUT_OUTPUTS, UNKNOWN_CHECK, NOT_REPORTED})


class SplitChecks:
    """The split checks of some chapters, public and hidden, the references and recorded data their
    steps name, and the cases drawn for one run's seed."""

    def __init__(
        self,
        course: Course,
        chapter_ids: list[str],
        seed: int,
        *,
        exercise_ids: list[str] | None = None,
        name_mistakes: bool = False,
    ):
        """`exercise_ids`: only these exercises' checks; `name_mistakes`: failures of hidden checks
        name the catalogued mistake their outputs match (`mistakes.live`)."""
        self.seed = seed
        self.name_mistakes = name_mistakes
        markers = {course.exercise(exercise_id).marker for exercise_id in exercise_ids or []}
        self.checks: dict[str, tuple[str, Callable, dict]] = {}
        self.references: dict[str, loader.LoadedNotebook] = {}
        self.recorded: dict[str, dict] = {}
        for chapter_id in chapter_ids:
            for module in _check_modules(chapter_id):
                for key, (check, params) in split.split_checks(module).items():
                    if not markers or exercise_marker(check) in markers:
                        self.checks[key] = (chapter_id, check, params)
            steps = [step for cid, check, _ in self.checks.values() if cid == chapter_id for step in _steps(check)]
            if any("ref" in inspect.signature(step).parameters for step in steps):
                self.references[chapter_id] = loader.load_notebook(
                    paths.solution_notebook(chapter_id), course.chapter(chapter_id)
                )
            if any("recorded" in inspect.signature(step).parameters for step in steps):
                self.recorded[chapter_id] = recording.read(chapter_id)
        self.cases = {key: self._draw(key) for key in self.checks}

    def _fixtures(self, key: str, step: Callable, stack: contextlib.ExitStack) -> dict:
        chapter_id, _, params = self.checks[key]
        return split.grader_fixtures(
            step,
            key,
            params,
            stack,
            seed=self.seed,
            ref=self.references.get(chapter_id),
            recorded=self.recorded.get(chapter_id),
        )

    def _draw(self, key: str) -> bytes:

        setup = self.checks[key][1].setup
        with _ONE_AT_A_TIME, contextlib.ExitStack() as stack, _one_thread():
            fixtures = self._fixtures(key, setup, stack)
            return split.drawn_case(setup, fixtures)

    def decide(self, check: CheckResult, outputs: bytes | None) -> CheckResult:
        """The outcome of split check `check` from the outputs its submission produced."""

        if check.outcome in _FAILED_IN_SUBMISSION:
            return check
        if check.outcome != runner.PRODUCED or outputs is None:
            return dataclasses.replace(check, outcome="error", message=WITHOUT_OUTPUTS)
        started = time.monotonic()
        compare = self.checks[check.check_id][1].compare
        failure = None
        with _ONE_AT_A_TIME, contextlib.ExitStack() as stack, _one_thread():
            fixtures = self._fixtures(check.check_id, compare, stack)
            try:
                fixtures["case"] = split.loads(self.cases[check.check_id])
                fixtures["outputs"] = split.loads(outputs)
                split.call_with(compare, fixtures)
                outcome, message = "passed", ""
            except Exception as exc:  # noqa: BLE001 - outputs a submission made: any failure is its own
                failure = exc if isinstance(exc, CheckFailure) else None
                outcome, message = runner.classify(exc)
        if failure is not None:  # named outside the lock: the first naming of an exercise takes seconds
            seed = self.seed if self.name_mistakes else None
            named = mistakes.explained(failure, check.check_id, fixtures["outputs"], check.exercise_id, seed)
            outcome, message = runner.classify(named)
        seconds = check.seconds + time.monotonic() - started
        return dataclasses.replace(check, outcome=outcome, message=message, seconds=seconds)

    def complete(
        self, checks: list[CheckResult], outputs: dict[str, bytes], course: Course, chapter_ids: list[str]
    ) -> list[CheckResult]:
        """`checks` with every split check of `chapter_ids` decided here; one the report left out counts as an error."""
        decided = []
        for check in checks:
            if check.check_id in self.checks:
                check = self.decide(check, outputs.get(check.check_id))
            elif check.outcome not in _FAILED_IN_SUBMISSION:  # a verdict only the grader may give
                check = dataclasses.replace(check, outcome="error", message=UNKNOWN_CHECK)
            decided.append(check)
        reported = {check.check_id for check in checks}
        exercises = {ex.marker: ex.id for ex in course.exercises()}
        for key, (chapter_id, check, _) in self.checks.items():
            if chapter_id in chapter_ids and key not in reported:
                name = check_title(check, check.__name__) + _params_label(key)
                visibility = "hidden" if key.startswith("instructor.") else "public"
                decided.append(
                    CheckResult(exercises[exercise_marker(check)], name, "error", NOT_REPORTED, visibility, 0.0, key)
                )
        return decided


def encode(outputs: bytes) -> str:
    return base64.b64encode(outputs).decode("ascii")


def decode(text: object) -> bytes | None:
    """The bytes of outputs in a report, or None where there are none or they are not base64."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _check_modules(chapter_id: str) -> list:
    """A chapter's check modules: its public checks and its hidden checks."""
    modules = [importlib.import_module(f"autograder.checks.test_{chapter_id}")]
    return [*modules, instructor_module(chapter_id, "hidden")]


def _params_label(key: str) -> str:
    """' [40-4-4]' for a parametrized check's id, as the runner names it; else ''."""
    suffix = key.rsplit("::", 1)[1].partition("[")[2]
    return f" [{suffix[:-1]}]" if suffix else ""


def _steps(check: Callable) -> tuple[Callable, Callable]:
    return check.setup, check.compare


@contextlib.contextmanager
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
