"""Chapter 1 fixtures: the logistic-regression inputs of the public checks and the reference's
loss and gradients on them."""

from __future__ import annotations

from autograder.checks.test_ch01 import logistic_case

# (seed, n, d, requires_grad): one example, one feature, more features than examples.
LOGISTIC = [(1, 8, 3, False), (2, 5, 1, True), (3, 17, 6, True), (4, 1, 4, False)]


def record(ref) -> dict:
    cases = [logistic_case(*args) for args in LOGISTIC]
    return {
        "logistic_cases": cases,
        "logistic_expected": [list(ref.logistic_regression_grads(c["x"], c["y"], c["w"], c["b"])) for c in cases],
    }
