"""One grading process: `python -m autograder.grading.worker JOB` grades one student's notebooks.

`sandbox.run_submission` starts it in a scratch folder with a scrubbed environment and
sends it a one-time token on stdin. Before any student code runs it confines itself
(`confine`, `guard`), imports the checks and loads the reference notebooks, then hides
solutions/ and the hidden checks' files, and remembers the functions grading relies on
(`guard.Integrity`). Then it loads each notebook, runs the same public and hidden checks
as `course check --hidden`, and writes every check's outcome with the token to the job's
result file, or an error when the submission replaced any of those functions. That file
is all the grader reads from this process; everything else it prints is only a log.

`python -m autograder.grading.worker --probe SCRATCH` tries the namespace confinement
and prints "sandbox ok" when it holds.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import confine, guard

if TYPE_CHECKING:
    from ..manifest import Course

PROBE_OK = "sandbox ok"


class TimeLimitExceeded(Exception):
    """Loading a notebook took longer than its budget."""


def _load(path: Path, chapter, seconds: float):
    """The notebook's setup and exercise cells, run under a time budget (an endless loop at import time)."""
    from .. import loader

    def on_alarm(signum, frame):
        raise TimeLimitExceeded(
            f"running the notebook's setup and exercise cells took longer than {seconds:g} s (an endless loop at import time?)"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return loader.load_notebook(path, chapter)
    except TimeLimitExceeded as exc:  # went off between cells, in the loader itself
        submission = loader.load_cells([], chapter, origin=str(path))
        submission.setup_problem = str(exc)
        return submission
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass
class Prepared:
    """What the worker holds before student code runs: the course, its limits, the references."""

    course: Course
    reference: dict


def prepare(job: dict) -> Prepared:
    """Import the checks of the job's chapters and load every reference notebook, so that
    solutions/ and the hidden checks' files can be hidden before student code runs."""
    import importlib

    import previous_chapters

    from .. import manifest, paths, runner

    course = manifest.load()
    course = dataclasses.replace(
        course, limits=dataclasses.replace(course.limits, exercise_timeout_s=float(job["exercise_timeout_s"]))
    )
    importlib.import_module("autograder.checks.conftest")
    for chapter_id in job["notebooks"]:
        for path in (runner.public_checks(chapter_id), runner.hidden_checks(chapter_id)):
            if path.exists():
                importlib.import_module(f"autograder.checks.{path.relative_to(runner.CHECKS_DIR).with_suffix('')}".replace("/", "."))
    # Chapters build on earlier chapters' references (`previous_chapters`), and hidden checks use their own.
    order = [ch.id for ch in course.chapters]
    last = max(order.index(chapter_id) for chapter_id in job["notebooks"])
    reference = {ch: previous_chapters.chapter(ch) for ch in order[:last + 1] if paths.solution_notebook(ch).exists()}
    return Prepared(course, reference)


def grade(job: dict, prepared: Prepared) -> dict:
    """Run the checks of the job's chapters; {"checks": [...]} or {"error": message}."""
    from .. import checking

    course = prepared.course
    submissions = {}
    exercises = []
    for chapter_id, path in job["notebooks"].items():
        chapter = course.chapter(chapter_id)
        submissions[chapter_id] = _load(Path(path), chapter, course.limits.exercise_timeout_s)
        exercises += chapter.exercises
    reference = {ch: prepared.reference[ch] for ch in job["notebooks"] if ch in prepared.reference}
    result = checking.check_submissions(course, submissions, exercises, hidden=True, seed=int(job["seed"]),
                                        reference=reference)
    checks = [dataclasses.asdict(c) for ch in result.chapters for ex in ch.exercises for c in ex.checks]
    return {"checks": checks}


def tampered(changed: list[str]) -> dict:
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return {"error": f"the submission replaced functions that grading relies on ({shown}); it gets no points"}


def _write(path: Path, report: dict) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(report))
    os.replace(temp, path)


def _supervise(child: int) -> None:
    """As process 1 of the pid namespace: reap every process until `child` ends, then exit the way it
    ended (128 + signal when killed), which `unshare` passes on faithfully, unlike a death by signal."""
    while True:
        pid, status = os.wait()
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def run(job_path: Path) -> None:
    token = sys.stdin.readline().strip()  # never on disk, where student code could find it
    job = json.loads(job_path.read_text())
    confine.die_with_parent()
    if job["namespaces"]:
        confine.cap_processes(job["max_processes"])
        confine.lock_filesystem(Path(job["scratch"]), [Path(p) for p in job["hide"]])
        child = os.fork()
        if child:
            _supervise(child)
    main_pid = os.getpid()
    confine.limit_resources(memory_mb=job["memory_mb"], file_size_mb=job["memory_mb"], processes=job["nproc"])
    import tiktoken  # noqa: F401 - heavy imports happen before the first notebook's clock starts
    import torch  # noqa: F401

    try:
        prepared = prepare(job)
    except Exception as exc:  # noqa: BLE001 - the course itself is broken: reported, never blamed on the student
        _write(Path(job["result"]), {"token": token, "error": f"the grader could not prepare: {type(exc).__name__}: {exc}"})
        os._exit(0)
    if job["namespaces"]:
        confine.hide_folders([Path(job["solutions"])])
        confine.empty_files(Path(job["hidden_checks"]))
    guard.install()
    changed = guard.Integrity().changed  # bound now: replacing Integrity.changed later changes nothing here
    try:
        report = grade(job, prepared)
    except MemoryError:
        report = {"error": f"the submission ran out of memory (limit {job['memory_mb']} MB)"}
    except Exception as exc:  # noqa: BLE001 - reported to the grader, which gives the submission zeros
        report = {"error": f"grading stopped: {type(exc).__name__}: {exc}"}
    if changes := changed():
        report = tampered(changes)
    if os.getpid() == main_pid:
        _write(Path(job["result"]), {**report, "token": token})
    sys.stdout.flush()
    os._exit(0)  # no atexit handlers or threads of student code get to run after the report


def probe(scratch: Path) -> None:
    """Set up the namespace confinement and show that writes outside `scratch` and the network fail."""
    confine.cap_processes(64)
    confine.lock_filesystem(scratch, [])
    (scratch / "inside").write_text("ok")
    try:
        (scratch.parent / f"outside-{os.getpid()}").write_text("escaped")
        raise SystemExit("a write outside the scratch folder succeeded")
    except OSError:
        pass
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=2).close()
    except OSError as exc:
        if exc.errno != errno.ENETUNREACH:  # "refused" would mean the host's network is still there
            raise SystemExit(f"the network is reachable ({exc})") from None
    else:
        raise SystemExit("a network connection succeeded")
    print(PROBE_OK)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[1]))
