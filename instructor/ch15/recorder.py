"""Chapter 15 fixtures: the reference's renderings of the checks' HellaSwag-format examples, and the
parameter count of GPT-2 124M built from the reference's GPTModel (the public check's hand count is
checked against it)."""

from __future__ import annotations

import json

from autograder.checks.test_ch15 import GPT2_124M, HELLASWAG_JSONL
from autograder.gpt2_for_checks import gpt2_for_checks


def record(ref) -> dict:
    with gpt2_for_checks() as encoding:
        rendered = [list(ref.render_example(json.loads(line), encoding)) for line in HELLASWAG_JSONL.splitlines()]
    model = ref.GPTModel(dict(GPT2_124M))
    total = sum(p.numel() for p in model.parameters())  # the tied head once
    return {
        "hellaswag": rendered,
        "gpt2_124m_parameters": total,
        "gpt2_124m_position_embedding": model.pos_emb.weight.numel(),
    }
