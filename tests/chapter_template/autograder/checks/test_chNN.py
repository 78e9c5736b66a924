"""Public checks of the template chapter: recorded outputs and a property.

Like every check they are split (`autograder.split`): produce runs the student's code and
returns its outputs, the decorated compare decides."""

import pytest
import torch

from autograder.compare import expect, expect_close, expect_tensor
from autograder.split import split

softmax = pytest.mark.chNN_softmax


def _recorded_weights(sub, recorded):
    return sub.softmax(recorded["scores"].clone())


@softmax
@split(produce=_recorded_weights)
def test_softmax_matches_recorded(outputs, recorded):
    """softmax gives the recorded weights"""
    expect_tensor(outputs, "softmax(scores)", shape=tuple(recorded["scores"].shape))
    expect_close(outputs, recorded["weights"], "softmax of the recorded scores", atol=1e-6)


def _large_score_weights(sub):
    return sub.softmax(torch.tensor([[1000.0, 999.0, 0.0]]))


@softmax
@split(produce=_large_score_weights)
def test_softmax_survives_large_scores(outputs):
    """scores in the thousands give finite weights"""
    expect_tensor(outputs, "softmax(scores)", shape=(1, 3))
    expect(bool(torch.isfinite(outputs).all()), "softmax overflows on large scores: subtract each row's maximum first")
