"""Record the public checks' fixtures by running the reference solutions.

Each chapter's recorder (`autograder/recorders/chNN.py`) defines
`record(ref) -> dict` of inputs and expected outputs; the dict is saved with
`torch.save` and loaded by the checks with `weights_only=True`.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from . import loader, paths
from .manifest import Course


def write(course: Course, chapter_id: str) -> Path:
    import torch

    reference = loader.load_notebook(paths.solution_notebook(chapter_id), course.chapter(chapter_id))
    broken = {ex_id: str(p) for ex_id, p in reference.problems.items()}
    if reference.setup_problem or broken:
        raise RuntimeError(f"the reference notebook does not load: {reference.setup_problem or broken}")
    recorder = importlib.import_module(f"autograder.recorders.{chapter_id}")
    torch.manual_seed(0)
    recorded = recorder.record(reference)
    path = paths.fixtures_dir() / f"{chapter_id}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(recorded, path)
    return path
