"""Hidden checks of the template chapter: the live reference on seeded inputs."""

import torch

from autograder.checks.test_chNN import softmax
from autograder.compare import expect_close
from autograder.split import split


def _scores(seed):
    return {"scores": torch.randn(3, 5, generator=torch.Generator().manual_seed(seed)) * 10}


def _weights(sub, case):
    return {"weights": sub.softmax(case["scores"].clone())}


@softmax
@split(setup=_scores, produce=_weights)
def test_softmax_agrees_with_reference(outputs, case, ref):
    """hidden: softmax of random scores"""
    expect_close(outputs["weights"], ref.softmax(case["scores"]), "softmax on a hidden input", atol=1e-6)
