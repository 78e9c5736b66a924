"""Scores and statuses per exercise from the outcomes of its checks."""

from __future__ import annotations

from autograder.forbidden import ForbiddenCall, forbid
from autograder.manifest import Exercise
from autograder.runner import classify
from autograder.scoring import CheckResult, score_exercise

EXERCISE = Exercise("ch02.thing", "Thing", 4.0, ("Thing",), "Think about it.")


def checks(*outcomes):
    return [
        CheckResult("ch02.thing", f"check {i}", o, f"message {i}" if o != "passed" else "")
        for i, o in enumerate(outcomes)
    ]


def test_all_checks_passing_gives_full_marks():
    result = score_exercise(EXERCISE, checks("passed", "passed"))
    assert (result.status, result.score, result.message) == ("passed", 4.0, "")


def test_partial_credit_is_shared_among_checks_that_ran():
    result = score_exercise(EXERCISE, checks("passed", "failed", "passed", "skipped"))
    assert (result.status, result.score) == ("failed", 2.67)
    assert result.message == "message 1 Hint: Think about it."


def test_stub_scores_zero_and_is_not_implemented():
    result = score_exercise(EXERCISE, checks("not_implemented", "not_implemented"))
    assert (result.status, result.score) == ("not_implemented", 0)


def test_half_written_exercise_counts_as_failed():
    result = score_exercise(EXERCISE, checks("passed", "not_implemented"))
    assert (result.status, result.score) == ("failed", 2.0)


def test_missing_outranks_other_outcomes():
    assert score_exercise(EXERCISE, checks("failed", "missing")).status == "missing"


def test_only_skipped_checks_is_an_error_with_the_reason():
    result = score_exercise(EXERCISE, [CheckResult("ch02.thing", "c", "skipped", "needs data")])
    assert (result.status, result.score) == ("error", 0) and "needs data" in result.message


def test_exceptions_map_to_statuses():
    assert classify(NotImplementedError())[0] == "not_implemented"
    assert classify(ValueError("bad"))[1] == "ValueError: bad"
    assert classify(ForbiddenCall("no"))[0] == "failed"


def test_forbid_blocks_a_call_and_restores_it():
    import math

    original = math.sqrt
    with forbid(["math.sqrt"]):
        try:
            math.sqrt(4)
        except ForbiddenCall as exc:
            assert "math.sqrt" in str(exc)
        else:
            raise AssertionError("math.sqrt should be forbidden")
    assert math.sqrt is original


def test_a_shortfall_names_the_failing_exercises_it_builds_on():
    result = score_exercise(EXERCISE, checks("passed", "failed"), failing_uses=("LayerNorm",))
    assert "your LayerNorm also fails its checks — fix that first" in result.message
    result = score_exercise(EXERCISE, checks("passed", "failed"), failing_uses=("LayerNorm", "TransformerBlock"))
    assert "your LayerNorm and TransformerBlock also fail their checks — fix those first" in result.message


def test_full_marks_never_mention_the_exercises_built_on():
    assert score_exercise(EXERCISE, checks("passed"), failing_uses=("LayerNorm",)).message == ""
