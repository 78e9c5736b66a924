"""Generate the student notebooks in chapters/ from solutions/ with nbgrader.

nbgrader's own `generate_assignment` does the work (solution regions become
`raise NotImplementedError()`, test cells are locked and checksummed), so the
released notebooks are real nbgrader assignments.
"""
from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import paths


class ReleaseError(Exception):
    """nbgrader could not generate a chapter."""


def generate(chapter_id: str, release_dir: Path) -> Path:
    """Run nbgrader's generate_assignment for one chapter into `release_dir`; return the chapter folder."""
    root = paths.course_root()
    command = [
        sys.executable, "-m", "nbgrader", "generate_assignment", chapter_id,
        "--force", "--no-db", "--log-level=WARN",
        f"--CourseDirectory.root={root}",
        f"--CourseDirectory.release_directory={release_dir}",
    ]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    out = release_dir / chapter_id
    if done.returncode != 0 or not out.is_dir():
        raise ReleaseError(f"nbgrader generate_assignment {chapter_id} failed:\n{done.stdout}{done.stderr}".strip())
    return out


def _same_file(a: Path, b: Path) -> bool:
    if a.suffix == ".ipynb":
        return json.loads(a.read_text(encoding="utf-8")) == json.loads(b.read_text(encoding="utf-8"))
    return filecmp.cmp(a, b, shallow=False)


def _files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def differences(chapter_id: str) -> list[str]:
    """Files under chapters/<chapter_id> that differ from what nbgrader would generate."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(chapter_id, Path(tmp))
        current = paths.chapters_dir() / chapter_id
        if not current.is_dir():
            return [f"chapters/{chapter_id}/ (missing)"]
        expected, present = _files(fresh), _files(current)
        names = sorted(expected ^ present) + sorted(
            p for p in expected & present if not _same_file(fresh / p, current / p)
        )
        return [f"chapters/{chapter_id}/{p}" for p in names]


def release(chapter_id: str) -> Path:
    """Regenerate chapters/<chapter_id> from solutions/<chapter_id>."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(chapter_id, Path(tmp))
        target = paths.chapters_dir() / chapter_id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(fresh, target)
        return target
