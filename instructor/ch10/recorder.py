"""Chapter 10 fixtures: the public checks' cases, drawn once from a fixed seed.

The checks compare with PyTorch's autograd (and closed forms), computed in their compare step,
so the fixture holds inputs only: the reference passes them by construction (`course check
--notebook solutions/...`), and `tests/test_ch10_reference.py` holds it to PyTorch on its own."""

from __future__ import annotations

from autograder.checks.test_ch10 import (
    activation_cases,
    elementwise_cases,
    gradient_check_case,
    graph_arrays,
    matmul_reduction_cases,
    softmax_cases,
    train_case,
    unbroadcast_cases,
)

SEED = 10


def record(ref) -> dict:
    return {
        "unbroadcast": unbroadcast_cases(SEED),
        "graph": graph_arrays(SEED),
        "elementwise": elementwise_cases(SEED),
        "matmul_and_reductions": matmul_reduction_cases(SEED),
        "activations": activation_cases(SEED),
        "softmax_cross_entropy": softmax_cases(SEED),
        "gradient_check": gradient_check_case(SEED),
        "train": train_case(SEED),
    }
