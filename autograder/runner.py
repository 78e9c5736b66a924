"""Run the pytest checks of some exercises against a submission and collect outcomes.

The checks live in `autograder/checks/test_chNN.py` (public) and
`instructor/chNN/hidden.py` (hidden, instructor only). They get the submission
through the `sub` fixture (`autograder.check_plugin`), which `SubmissionPlugin`
serves; the plugin also enforces each exercise's time budget and turns every
test report into a `CheckResult`.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import traceback
from pathlib import Path

import pytest

from . import loader, paths, split
from .compare import CheckFailure
from .forbidden import forbid
from .loader import ExerciseUnavailable, LoadedNotebook
from .manifest import Course, Exercise
from .no_dynamo import skip_dynamo_import
from .scoring import SKIPPED, CheckResult

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
# The outcome of a split check whose produce step ran: the grader's compare step decides it.
PRODUCED = "produced"


class CheckTimeout(Exception):
    """An exercise used up its time budget."""


def check_title(function, name: str) -> str:
    """What reports call a check: its docstring's first line, else its name in words."""
    return (function.__doc__ or name.removeprefix("test_").replace("_", " ")).strip().splitlines()[0]


def exercise_marker(function) -> str | None:
    """The name of the first mark on a check function that is neither `forbid` nor `parametrize`
    (its exercise's marker)."""
    marks = getattr(function, "pytestmark", [])
    return next((mark.name for mark in marks if mark.name not in ("forbid", "parametrize")), None)


def _in_student_code(exc: BaseException) -> str:
    """' (cell N, line M)' for the deepest frame of the exception inside notebook code, else ''."""
    frames = [
        (match.group(1), frame.lineno)
        for frame in traceback.extract_tb(exc.__traceback__)
        if (match := re.match(r"<.* cell (\d+): ", frame.filename))
    ]
    return f" (cell {frames[-1][0]}, line {frames[-1][1]})" if frames else ""


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, message) for an exception raised by a check."""
    if isinstance(exc, ExerciseUnavailable):
        return exc.status, str(exc)
    if isinstance(exc, NotImplementedError):
        where = _in_student_code(exc)
        return "not_implemented", f"not implemented yet{where}: replace `raise NotImplementedError()` with your code"
    if isinstance(exc, CheckTimeout):
        return "error", str(exc)
    if isinstance(exc, CheckFailure):
        return "failed", str(exc)
    if isinstance(exc, AssertionError):
        return "failed", str(exc) or "an assertion in your code failed" + _in_student_code(exc)
    if isinstance(exc, RecursionError):
        return "error", "infinite recursion" + _in_student_code(exc)
    return "error", f"{type(exc).__name__}: {exc}{_in_student_code(exc)}"


class SubmissionPlugin:
    """Serves submissions to the checks' fixtures and records every check's outcome."""

    def __init__(
        self,
        course: Course,
        submissions: dict[str, LoadedNotebook],
        *,
        seed: int = 0,
        cases: dict[str, bytes] | None = None,
    ):
        self.course = course
        self.submissions = submissions
        # The reference of each chapter, loaded by the `ref` fixture when a hidden check first asks.
        self.reference: dict[str, LoadedNotebook] = {}
        self.seed = seed
        # Given the cases of the split checks (check id -> bytes), run only their produce steps.
        self.cases = cases
        self.produced: dict[str, bytes] = {}
        self.results: list[CheckResult] = []
        self._spent: dict[str, float] = {}
        self._markers = {ex.marker: ex for ex in course.exercises()}

    def submission(self, chapter_id: str) -> LoadedNotebook:
        return self.submissions[chapter_id]

    def produce_for(self, item: pytest.Item, check) -> None:
        """Run the produce step of split check `check` on its case; keep the outputs as bytes."""
        key = split.check_id(item.module.__name__, item.name)
        if key not in self.cases:
            raise RuntimeError(f"the grader sent no case for the split check {key}")
        fixtures = {**item.funcargs, "case": split.loads(self.cases[key])}
        self.produced[key] = split.dumps(split.as_data(split.call_with(check.produce, fixtures)))

    def pytest_configure(self, config: pytest.Config) -> None:
        # Messages come from the exception itself; pytest's long failure reports, which print
        # every argument of every frame (fixture tensors included), would only cost time.
        config.option.tbstyle = "native"

    def exercise_of(self, item: pytest.Item) -> Exercise | None:
        for mark in item.iter_markers():
            if mark.name in self._markers:
                return self._markers[mark.name]
        return None

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item):
        exercise = self.exercise_of(item)
        budget = self.course.limits.exercise_timeout_s - self._spent.get(exercise.id if exercise else "", 0.0)
        use_alarm = exercise is not None and threading.current_thread() is threading.main_thread()
        if use_alarm:

            def on_alarm(signum, frame):
                raise CheckTimeout(
                    f"took longer than the {self.course.limits.exercise_timeout_s:g} s this exercise may use "
                    "(an infinite loop, or a very slow implementation?)"
                )

            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, max(budget, 0.001))
        forbidden = [name for mark in item.iter_markers("forbid") for name in mark.args]
        try:
            with forbid(forbidden, [submission.namespace for submission in self.submissions.values()]):
                yield
        finally:
            if use_alarm:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report = outcome.get_result()
        exercise = self.exercise_of(item)
        if exercise is None:
            return
        self._spent[exercise.id] = self._spent.get(exercise.id, 0.0) + call.duration
        if report.when == "call" or report.failed or report.skipped:
            self.results.append(self._result(item, exercise, report, call))

    def _result(self, item, exercise: Exercise, report, call) -> CheckResult:
        hidden = item.module.__name__.startswith("instructor.")
        visibility = "hidden" if hidden else "public"
        key = split.check_id(item.module.__name__, item.name)
        name = check_title(item.function, item.originalname)
        if hasattr(item, "callspec"):
            name += f" [{item.callspec.id}]"
        if report.skipped:
            reason = call.excinfo.value.msg if call.excinfo else ""
            return CheckResult(exercise.id, name, SKIPPED, reason, visibility, check_id=key)
        if report.passed:
            outcome = PRODUCED if key in self.produced else "passed"
            return CheckResult(exercise.id, name, outcome, "", visibility, call.duration, key)
        status, message = classify(call.excinfo.value)
        return CheckResult(exercise.id, name, status, message, visibility, call.duration, key)


class StandalonePlugin(SubmissionPlugin):
    """Loads notebooks itself when the checks run under plain pytest (`--notebook`, else `chapters/`)."""

    def __init__(self, course: Course, notebook: str | None, seed: int):
        super().__init__(course, {}, seed=seed)
        self.notebook = notebook

    def submission(self, chapter_id: str) -> LoadedNotebook:
        if chapter_id not in self.submissions:
            path = Path(self.notebook) if self.notebook else paths.student_notebook(chapter_id)
            self.submissions[chapter_id] = loader.load_notebook(path, self.course.chapter(chapter_id))
        return self.submissions[chapter_id]


def find_plugin(config: pytest.Config) -> SubmissionPlugin | None:
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, SubmissionPlugin)), None)


def _forget_last_failure() -> None:
    """Drop the traceback pytest keeps of the last failed check (sys.last_traceback, for debuggers):
    its frames would keep the checked code, and the submissions it ran on, alive in this process."""
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        if hasattr(sys, name):
            delattr(sys, name)


def run_checks(
    course: Course,
    submissions: dict[str, LoadedNotebook],
    exercises: list[Exercise],
    *,
    hidden: bool = False,
    seed: int = 0,
    cases: dict[str, bytes] | None = None,
    produced: dict[str, bytes] | None = None,
) -> list[CheckResult]:
    """Run the checks of `exercises` against the chapter submissions; one result per check.

    With `cases` (check id -> bytes), split checks run only their produce step: their
    outcome is PRODUCED and their outputs go into `produced` (check id -> bytes).
    """
    chapters = sorted({ex.chapter_id for ex in exercises})
    files = [paths.public_checks(ch) for ch in chapters if paths.public_checks(ch).exists()]
    if hidden:
        files += [paths.hidden_checks(ch) for ch in chapters]
        missing = [f for f in files if not f.exists()]
        if missing:  # skipping them would give their points away
            raise FileNotFoundError(f"hidden checks asked for and not here: {', '.join(map(str, missing))}")
    plugin = SubmissionPlugin(course, submissions, seed=seed, cases=cases)
    if not files:
        return []
    skip_dynamo_import()
    args = [
        *map(str, files),
        "-m",
        " or ".join(ex.marker for ex in exercises),
        "-c",
        str(CHECKS_DIR / "pytest.ini"),
        "-p",
        "autograder.check_plugin",
        "--rootdir",
        str(CHECKS_DIR.parent),
        "-p",
        "no:terminal",
        "-p",
        "no:cacheprovider",
        # Its gc.collect() passes at the end of every session cost seconds and report nothing checks use.
        "-p",
        "no:unraisableexception",
        "--capture=sys",
        "--assert=plain",
        "-W",
        "ignore",
    ]
    # Third-party pytest plugins (random order, timeouts, ...) must not change how checks run.
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        code = pytest.main(args, plugins=[plugin])
    finally:
        _forget_last_failure()
        if autoload is None:
            del os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"]
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
    if code in (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        raise RuntimeError(
            f"the checks in {', '.join(f.name for f in files)} could not run (pytest exit code {int(code)})"
        )
    if produced is not None:
        produced.update(plugin.produced)
    return plugin.results
