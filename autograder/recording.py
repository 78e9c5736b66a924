"""Record what the public checks compare with, by running the reference solutions (`course fixtures`).

Each chapter's recorder (`instructor/chNN/recorder.py`) defines `record(ref) -> dict`
of inputs and expected outputs; the dict is saved with `torch.save` into
`autograder/checks/recorded/chNN.pt`, which `read` loads with `weights_only=True` for the
checks' `recorded` fixture and the grader's compare steps.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from . import loader, paths
from .instructor_only import instructor_module
from .manifest import Course


def write(course: Course, chapter_id: str) -> Path:
    import torch

    reference = loader.load_notebook(paths.solution_notebook(chapter_id), course.chapter(chapter_id))
    broken = {ex_id: str(p) for ex_id, p in reference.problems.items()}
    if reference.setup_problem or broken:
        raise RuntimeError(f"the reference notebook does not load: {reference.setup_problem or broken}")
    recorder = instructor_module(chapter_id, "recorder")
    torch.manual_seed(0)
    recorded = recorder.record(reference)
    path = paths.recorded_file(chapter_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(recorded, path)
    return path


@cache
def read(chapter_id: str) -> dict:
    """A chapter's recorded inputs and expected outputs."""
    import torch

    return torch.load(paths.recorded_file(chapter_id), weights_only=True)
