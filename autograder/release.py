"""Generate the student notebooks in chapters/ from solutions/ with nbgrader.

nbgrader's own `generate_assignment` does the work (solution regions become
`raise NotImplementedError()`, test cells are locked and checksummed), so the
released notebooks are real nbgrader assignments.

`write_student_release` writes a whole student copy of the course into a new
folder: the generated chapters and the autograder with its public checks, but
nothing that holds or needs the reference solutions.
"""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from . import manifest, paths
from .instructor_only import is_instructor_only

# Course files a student release carries as they are, relative to the course root.
STUDENT_FILES = ("README.md", "pyproject.toml", "nbgrader_config.py", "data/manifest.toml")
# The packages it carries whole: the grader with its public checks, the course's library, earlier chapters' code.
STUDENT_PACKAGES = ("autograder", "llmcourse", "previous_chapters")
# Folders it carries whole where the course has them: the settings of the pretraining runs.
STUDENT_FOLDERS = ("configs",)
# Files a local run leaves behind; never part of a release.
LOCAL_LEFTOVERS = ("__pycache__", ".pytest_cache", ".ipynb_checkpoints")


class ReleaseError(Exception):
    """nbgrader could not generate a chapter, or a student release could not be written."""


class ReleaseTargetError(ReleaseError):
    """The folder for a student release is already in use."""


def generate(chapter_id: str, release_dir: Path) -> Path:
    """Run nbgrader's generate_assignment for one chapter into `release_dir`; return the chapter folder."""
    root = paths.course_root()
    command = [
        sys.executable,
        "-m",
        "nbgrader",
        "generate_assignment",
        chapter_id,
        "--force",
        "--no-db",
        "--log-level=WARN",
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


def _leave_out_leftovers(folder: str, names: list[str]) -> set[str]:
    """A `shutil.copytree` ignore function that drops what local runs leave behind."""
    return {name for name in names if name in LOCAL_LEFTOVERS}


def _refuse_instructor_only(staging: Path) -> None:
    leaked = [p.relative_to(staging) for p in staging.rglob("*") if is_instructor_only(p.relative_to(staging))]
    if leaked:
        raise ReleaseError(f"a student release must not hold instructor-only files: {', '.join(map(str, leaked[:5]))}")


def _chapter_block_start(lines: list[str], header: int) -> int:
    """The first line of the comment lines directly above a `[[chapters]]` header (they belong to it)."""
    start = header
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start


def manifest_text(text: str, chapter_ids: list[str]) -> str:
    """The text of a `course.toml` keeping only the `[[chapters]]` of `chapter_ids`, comments and layout intact.

    A chapter's block runs from its `[[chapters]]` header (and the comment right
    above it) to the next chapter's; its exercises are inside it.
    """
    lines = text.splitlines(keepends=True)
    headers = [i for i, line in enumerate(lines) if line.split("#", 1)[0].strip() == "[[chapters]]"]
    starts = [_chapter_block_start(lines, i) for i in headers]
    blocks = [lines[a:b] for a, b in zip(starts, starts[1:] + [len(lines)])]
    ids = [tomllib.loads("".join(block))["chapters"][0]["id"] for block in blocks]
    kept = [line for chapter_id, block in zip(ids, blocks) if chapter_id in chapter_ids for line in block]
    return "".join(lines[: starts[0] if starts else len(lines)] + kept)


def _write_manifest(out: Path, chapter_ids: list[str]) -> None:
    """Write `course.toml` for the released chapters and check that it parses to exactly them."""
    target = out / paths.MANIFEST_NAME
    target.write_text(manifest_text(paths.manifest_path().read_text(encoding="utf-8"), chapter_ids), encoding="utf-8")
    released = [chapter.id for chapter in manifest.parse(target).chapters]
    if sorted(released) != sorted(chapter_ids):
        raise ReleaseError(f"the released course.toml lists chapters {released}, not {sorted(chapter_ids)}")


def _check_out_dir(out: Path) -> None:
    """Refuse a release folder that holds anything: a release never mixes with other files."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseTargetError(
            f"{out} already exists and is not an empty folder; name a new folder for the student release"
        )


def write_student_release(out: Path, chapter_ids: list[str]) -> Path:
    """Write a student release of the course into `out` (a new or empty folder); return `out`.

    The release holds `chapters/<id>/` for `chapter_ids` (fresh from nbgrader),
    the course's packages (nothing instructor-only is in them), a `course.toml`
    listing only those chapters, and the set-up files a student needs. Nothing
    in it comes from solutions/ except through nbgrader's stubs. It is built in
    a scratch folder beside `out` and moved into place at the end, so a failed
    release leaves no half-written `out`.
    """
    out = Path(out).resolve()
    _check_out_dir(out)
    root = paths.course_root()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-") as tmp:
        staging = Path(tmp) / "release"
        staging.mkdir()
        for chapter_id in chapter_ids:
            generate(chapter_id, staging / "chapters")
        for package in STUDENT_PACKAGES:
            shutil.copytree(root / package, staging / package, ignore=_leave_out_leftovers)
        for folder in STUDENT_FOLDERS:
            if (root / folder).is_dir():
                shutil.copytree(root / folder, staging / folder, ignore=_leave_out_leftovers)
        for name in STUDENT_FILES:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, staging / name)
        _write_manifest(staging, chapter_ids)
        _refuse_instructor_only(staging)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    return out
