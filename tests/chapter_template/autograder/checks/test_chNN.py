"""Public checks of the template chapter: recorded outputs and a property."""

import pytest
import torch

from autograder.compare import expect, expect_close, expect_tensor

softmax = pytest.mark.chNN_softmax


@softmax
def test_softmax_matches_recorded(sub, recorded):
    """softmax gives the recorded weights"""
    got = sub.softmax(recorded["scores"].clone())
    expect_tensor(got, "softmax(scores)", shape=tuple(recorded["scores"].shape))
    expect_close(got, recorded["weights"], "softmax of the recorded scores", atol=1e-6)


@softmax
def test_softmax_survives_large_scores(sub):
    """scores in the thousands give finite weights"""
    got = sub.softmax(torch.tensor([[1000.0, 999.0, 0.0]]))
    expect(bool(torch.isfinite(got).all()), "softmax overflows on large scores: subtract each row's maximum first")
