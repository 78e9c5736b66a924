"""A Gradescope autograder bundle: build the zip, and grade one Gradescope submission.

Gradescope unpacks the zip into /autograder/source, runs `setup.sh` once to build
its image, then runs `run_autograder` for every submission, with the student's
files in /autograder/submission/. `run_autograder` calls `run` here, which grades
them with the same batch code as `course grade` (one student, one worker, in a
sandboxed process) and writes the same `gradescope_json` to
/autograder/results/results.json.

The bundle holds the reference notebooks of its chapters (the hidden checks run
against them), so it belongs on the instructor's Gradescope account only.

usage: python -m autograder.grading.gradescope_bundle run [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path

from .. import manifest, paths, release
from ..instructor_only import needed_for_grading
from ..manifest import Course
from ..usage import require_check_data, require_grading_material
from . import batch, outputs
from .atomic import write_atomic
from .submissions import IGNORED

DEFAULT_ROOT = "/autograder"
# The grade always goes to one student; Gradescope knows who it is.
STUDENT = "submission"
TORCH_PIN = "torch==2.13.0"
# Course files the bundle carries as they are (pyproject's readme must exist for pip).
COURSE_FILES = ("README.md", "pyproject.toml", "data/manifest.toml")

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once while it builds the autograder image.
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get update
    apt-get install -y python3 python3-pip python3-venv
fi
python3 -m pip install --upgrade pip
# The CPU build of torch: the grader never needs a GPU.
python3 -m pip install --extra-index-url https://download.pytorch.org/whl/cpu "{torch}" -e .
{fetch}
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this for every submission: grade {root}/submission/, write {root}/results/results.json.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-{root}}}"
cd "$ROOT/source"
exec python3 -m autograder.grading.gradescope_bundle run --root "$ROOT"
"""


def _add_tree(bundle: zipfile.ZipFile, folder: Path, arcname: str) -> None:
    """Add the files under `folder` as `arcname/...`, without local leftovers."""
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or set(relative.parts) & set(release.LOCAL_LEFTOVERS):
            continue
        bundle.write(path, f"{arcname}/{relative.as_posix()}")


def _add_text(bundle: zipfile.ZipFile, name: str, text: str, mode: int = 0o644) -> None:
    """Add `text` as the file `name`, with Unix permissions `mode` (Gradescope runs the scripts as they are)."""
    info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    bundle.writestr(info, text)


def setup_script(course: Course, chapter_ids: list[str]) -> str:
    names = sorted({name for chapter_id in chapter_ids for name in course.chapter(chapter_id).data})
    fetch = f"python3 -m autograder.cli data fetch --quiet {' '.join(names)}" if names else ""
    return SETUP_SH.format(torch=TORCH_PIN, fetch=fetch)


def build(out: Path, chapter_ids: list[str]) -> Path:
    """Write the bundle for `chapter_ids` (checked against the manifest, with solutions here) to `out`; return it."""
    course = manifest.load()
    root = paths.course_root()
    require_grading_material(chapter_ids, "a Gradescope bundle")
    require_check_data(course, chapter_ids, "a Gradescope bundle")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}-", delete=False) as tmp:
        scratch = Path(tmp.name)
    try:
        with zipfile.ZipFile(scratch, "w", zipfile.ZIP_DEFLATED) as bundle:
            _add_text(bundle, "setup.sh", setup_script(course, chapter_ids), 0o755)
            _add_text(bundle, "run_autograder", RUN_AUTOGRADER.format(root=DEFAULT_ROOT), 0o755)
            course_toml = release.manifest_text(paths.manifest_path().read_text(encoding="utf-8"), chapter_ids)
            _add_text(bundle, paths.MANIFEST_NAME, course_toml)
            for name in COURSE_FILES:
                bundle.write(root / name, name)
            for package in release.STUDENT_PACKAGES:
                _add_tree(bundle, root / package, package)
            for name in needed_for_grading(chapter_ids):
                if not set(name.parts) & set(release.LOCAL_LEFTOVERS):
                    bundle.write(root / name, name.as_posix())
        scratch.replace(out)
    finally:
        scratch.unlink(missing_ok=True)
    return out


def _handed_in(submission: Path, course: Course) -> dict[str, Path]:
    """The notebook handed in for each chapter: a chNN.ipynb at any depth, the shallowest if several."""
    found: dict[str, Path] = {}
    known = {chapter.id for chapter in course.chapters}
    candidates = sorted(submission.rglob("*.ipynb"), key=lambda p: (len(p.parts), str(p)))
    for path in candidates:
        relative = path.relative_to(submission)
        if path.stem in known and path.stem not in found and path.is_file() and not set(relative.parts) & IGNORED:
            found[path.stem] = path
    return found


def _nothing_handed_in(course: Course, submission: Path) -> dict:
    expected = ", ".join(f"{chapter.id}.ipynb" for chapter in course.chapters)
    return {
        "score": 0.0,
        "output": f"No chapter notebook in the submission ({submission.name}/): hand in {expected}.",
        "tests": [],
    }


def grade(root: Path, seed: int | None = None) -> dict:
    """Grade `root`/submission/ on every chapter of the course and write `root`/results/results.json; return it."""
    course = manifest.load()
    submission = root / "submission"
    notebooks = _handed_in(submission, course) if submission.is_dir() else {}
    if not notebooks:
        result = _nothing_handed_in(course, submission)
    else:
        with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
            student = Path(tmp) / "submissions" / STUDENT
            student.mkdir(parents=True)
            for chapter_id, notebook in notebooks.items():
                shutil.copyfile(notebook, student / f"{chapter_id}.ipynb")
            options = batch.Options(
                submissions=student.parent,
                out=Path(tmp) / "results",
                workers=1,
                chapters=[chapter.id for chapter in course.chapters],
                seed=seed,
                progress=False,
            )
            batch.grade_class(course, options)
            record = json.loads((options.out / batch.RECORDS / f"{STUDENT}.json").read_text(encoding="utf-8"))
        result = outputs.gradescope_json(record, course)
    target = root / "results" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.grading.gradescope_bundle", description=__doc__.split("\n\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    running = commands.add_parser("run", help="grade ROOT/submission/ and write ROOT/results/results.json")
    running.add_argument("--root", type=Path, default=Path(os.environ.get("AUTOGRADER_ROOT", DEFAULT_ROOT)))
    running.add_argument("--seed", type=int, help="seed of the hidden checks' random inputs (default: a random one)")
    args = parser.parse_args(argv)
    result = grade(args.root.resolve(), seed=args.seed)
    print(f"{args.root / 'results' / 'results.json'}: {result['output'].splitlines()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
