"""What an exercise's catalogued mistakes give on the hidden checks of one grading seed.

Run as `python -m autograder.grading.diagnosis EXERCISE SEED FILE` by `mistakes.live`, in a
process of its own: it draws the hidden checks' cases for SEED as the grader does
(`SplitChecks`), runs the reference and every mutant of EXERCISE through their produce steps,
and saves, by check id, each mistake's outputs where they differ from the reference's, as
`{check id: [(description, outputs)]}` in FILE (data and descriptions, never code).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .. import loader, manifest, mistakes, paths
from ..selftest import mutants, mutated_notebook
from .verdicts import SplitChecks


def hidden_mistakes(exercise_id: str, seed: int) -> dict[str, list[tuple[str, Any]]]:
    """The outputs of `exercise_id`'s mutants on the hidden checks where they differ from the reference's."""
    course = manifest.load()
    chapter_id = course.exercise(exercise_id).chapter_id
    cases = SplitChecks(course, [chapter_id], seed, exercise_ids=[exercise_id]).cases
    reference = loader.read_notebook(paths.solution_notebook(chapter_id))["cells"]

    def hidden_outputs(cells: list) -> dict[str, Any]:
        outputs = mistakes.produced_by(course, chapter_id, cells, [exercise_id], cases, hidden=True)
        return {key: value for key, value in outputs.items() if key.startswith("instructor.")}

    expected = hidden_outputs(reference)
    found: dict[str, list[tuple[str, Any]]] = {}
    for mutant in mutants(chapter_id):
        if mutant.exercise_id != exercise_id:
            continue
        for key, outputs in hidden_outputs(mutated_notebook(course, mutant)["cells"]).items():
            if key in expected and not mistakes.same(outputs, expected[key]):
                found.setdefault(key, []).append((mutant.description, outputs))
    return found


def main(argv: list[str]) -> int:
    import torch

    exercise_id, seed, target = argv[0], int(argv[1]), Path(argv[2])
    torch.set_num_threads(1)
    found = hidden_mistakes(exercise_id, seed)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    torch.save(found, partial)
    partial.replace(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
