"""The submission's processes: a fork server, and the process it forks to grade one student's notebooks.

`python -m autograder.grading.worker --serve FD CHAPTERS TIMEOUT [--warm]` (started
by `sandbox.ForkServer`) imports torch and the checks, loads the reference notebooks that
later chapters import (`previous_chapters`), then reads the split checks' cases from the
file the grader's first message names (with --warm, also grades the references once:
`warm_up`), and for each request forks a
process that becomes one submission's: its own session, scrubbed environment and
scratch folder, its namespaces (`enter_namespaces`) and resource limits. That process hides solutions/ and the hidden checks' files,
remembers the functions grading relies on (`guard.Integrity`), loads each notebook,
runs the same public checks as `course check --hidden` and the produce steps of its hidden
checks (`autograder.split`: the grader compares their outputs with the reference),
and writes every check's outcome (a hidden check's: its outputs) with the request's
one-time token to the job's result file, or an
error when the submission replaced any of those functions. That file is all the
grader reads from it; everything else it prints is only a log.

`python -m autograder.grading.worker --probe SCRATCH` tries the namespace confinement
and prints "sandbox ok" when it holds.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
import gc
import json
import os
import select
import signal
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from . import confine, guard

if TYPE_CHECKING:
    from ..manifest import Course

PROBE_OK = "sandbox ok"
MAX_REQUEST_BYTES = 64 * 1024


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
    """What the worker holds before student code runs besides the earlier chapters' references
    (which `previous_chapters` keeps): the course, its limits, and the cases of the split checks
    (check id -> bytes)."""

    course: Course
    cases: dict[str, bytes] = dataclasses.field(default_factory=dict)


def read_cases(path: Path) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in json.loads(path.read_text()).items()}


def write_cases(path: Path, cases: dict[str, bytes]) -> None:
    path.write_text(json.dumps({key: base64.b64encode(value).decode("ascii") for key, value in cases.items()}))


def prepare(chapters: list[str], exercise_timeout_s: float) -> Prepared:
    """Import the checks of `chapters` and load the reference notebooks of the chapters before
    the last of them (which later chapters import through `previous_chapters`), so that solutions/
    and the hidden checks' files can be hidden before student code runs."""
    import importlib

    import previous_chapters

    from .. import manifest, paths
    from ..instructor_only import instructor_module

    course = manifest.load()
    course = dataclasses.replace(
        course, limits=dataclasses.replace(course.limits, exercise_timeout_s=exercise_timeout_s)
    )
    importlib.import_module("autograder.check_plugin")
    for chapter_id in chapters:
        if paths.public_checks(chapter_id).exists():
            importlib.import_module(f"autograder.checks.test_{chapter_id}")
        if paths.hidden_checks(chapter_id).exists():
            instructor_module(chapter_id, "hidden")
    order = [ch.id for ch in course.chapters]
    last = max(order.index(chapter_id) for chapter_id in chapters)
    for chapter_id in order[:last]:
        if paths.solution_notebook(chapter_id).exists():
            previous_chapters.chapter(chapter_id)
    return Prepared(course)


def load_notebooks(job: dict, course: Course) -> dict:
    """The job's notebooks loaded, by chapter id."""
    return {
        chapter_id: _load(Path(path), course.chapter(chapter_id), course.limits.exercise_timeout_s)
        for chapter_id, path in job["notebooks"].items()
    }


def grade(job: dict, prepared: Prepared, submissions: dict) -> dict:
    """Run the checks of the job's chapters on `submissions` (`load_notebooks`), the split checks'
    produce steps only; {"checks": [...]} (a produced check carries its outputs, base64)."""
    from .. import runner
    from .verdicts import encode

    course = prepared.course
    exercises = [ex for chapter_id in submissions for ex in course.chapter(chapter_id).exercises]
    produced: dict[str, bytes] = {}
    checks = []
    for check in runner.run_checks(
        course, submissions, exercises, hidden=True, cases=prepared.cases, produced=produced
    ):
        item = dataclasses.asdict(check)
        if check.outcome == runner.PRODUCED:
            item["outputs"] = encode(produced[check.check_id])
        checks.append(item)
    return {"checks": checks}


def withhold_references(chapter_ids) -> None:
    """Drop the references of the chapters being graded, which the server may hold for later
    chapters, from this process's memory; `previous_chapters` refuses to load them again."""
    import previous_chapters

    held = [previous_chapters.withhold(chapter_id) for chapter_id in chapter_ids]
    if any(held):  # its code is in cycles among the objects the server froze: collect them all
        gc.unfreeze()
        gc.collect()


def tampered(changed: list[str]) -> dict:
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return {"error": f"the submission replaced functions that grading relies on ({shown}); it gets no points"}


def _write(path: Path, report: dict) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(report))
    os.replace(temp, path)


def _supervise(child: int) -> None:
    """Reap every process until `child` ends, then exit the way it ended (128 + signal when
    killed): as process 1 of the pid namespace, and as the process above it outside."""
    while True:
        pid, status = os.wait()
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            os._exit(128 - code if code < 0 else code)


def enter_namespaces(scratch: Path, hide: list[Path], max_processes: int) -> None:
    """Go on in fresh namespaces: returns in a grandchild, the child of process 1 of a new pid
    namespace, with only `scratch` writable, `hide` hidden and no network. This process and
    process 1 wait for it and exit its way; all three die with their parents."""
    confine.unshare_namespaces()
    child = os.fork()
    if child:
        _supervise(child)
    confine.die_with_parent()
    confine.mount_proc()
    confine.cap_processes(max_processes)
    confine.lock_filesystem(scratch, hide)
    child = os.fork()
    if child:
        _supervise(child)  # process 1 reaps the orphans of student code
    confine.die_with_parent()


def hide_instructor_only(folders: list[Path]) -> None:
    """Hide the instructor-only folders (`instructor_only`). Of the instructor folder only the
    modules this process imported stay, as empty files: their code is already loaded."""
    imported = [
        Path(module.__file__).resolve()
        for name, module in list(sys.modules.items())
        if name.split(".")[0] == "instructor" and getattr(module, "__file__", None)
    ]
    for folder in folders:
        if folder.name == "instructor":
            confine.empty_files(folder.resolve(), imported)
        else:
            confine.hide_folders([folder])


def grade_and_report(job: dict, token: str, prepared: Prepared | None, problem: str) -> None:
    """Hide what student code must not read, guard, grade, and write the report with `token`; never returns."""
    main_pid = os.getpid()
    confine.limit_resources(memory_mb=job["memory_mb"], file_size_mb=job["memory_mb"], processes=job["nproc"])
    if prepared is None:  # the course itself is broken: reported, never blamed on the student
        _write(Path(job["result"]), {"token": token, "error": problem})
        os._exit(0)
    if job["namespaces"]:
        hide_instructor_only([Path(p) for p in job["instructor_only"]])
    withhold_references(job["notebooks"])
    guard.install()
    changed = guard.Integrity().changed  # bound now: replacing Integrity.changed later changes nothing here
    try:
        report = grade(job, prepared, load_notebooks(job, prepared.course))
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


def _start_submission(request: dict, output: int, prepared: Prepared | None, problem: str) -> None:
    """In a child of the server: become the submission's process (own session, its output to
    `output`, its environment and folder, its namespaces), then grade; never returns."""
    os.setsid()
    confine.die_with_parent()
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    job = json.loads(Path(request["job"]).read_text())
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None
    os.chdir(job["home"])
    if job["namespaces"]:
        enter_namespaces(Path(job["scratch"]), [Path(p) for p in job["hide"]], job["max_processes"])
    grade_and_report(job, request["token"], prepared, problem)


def _reap(running: dict[int, int], server: socket.socket) -> None:
    """Report {"id", "status"} for every ended child (its exit status, -N when killed by signal N)."""
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if not pid:
            return
        server.send(json.dumps({"id": running.pop(pid), "status": os.waitstatus_to_exitcode(status)}).encode())


def warm_up(prepared: Prepared, chapters: list[str]) -> None:
    """Grade the reference notebooks once: a process forked afterwards starts with pytest, the
    checks and their caches warmed up, and grades a submission about twice as fast. The notebooks
    are unloaded afterwards: a process grading a chapter must not find its reference."""
    from .. import loader, paths

    job = {"notebooks": {ch: str(paths.solution_notebook(ch)) for ch in chapters}}
    submissions = load_notebooks(job, prepared.course)
    try:
        grade(job, prepared, submissions)
    finally:
        for submission in submissions.values():
            loader.unload(submission)


def serve(connection_fd: int, chapters: list[str], exercise_timeout_s: float, warm: bool) -> None:
    """The fork server: import torch, the checks and the earlier chapters' references once, read
    the split checks' cases from the file named by the grader's first message, {"cases": path}
    (and `warm_up` when `warm`), then fork one submission process per request until the grader
    closes the connection.

    A request is {"id", "job", "token", "env"} with the write end of the submission's
    output pipe attached; the server answers {"id", "pid"} when the process started and
    {"id", "status"} when it ended. No student code ever runs in this process.
    """
    confine.die_with_parent()
    import tiktoken  # noqa: F401 - every submission process inherits what is imported here
    import torch  # noqa: F401

    connection = socket.socket(fileno=connection_fd)
    try:
        prepared, problem = prepare(chapters, exercise_timeout_s), ""
    except Exception as exc:  # noqa: BLE001 - every submission reports it
        prepared, problem = None, f"the grader could not prepare: {type(exc).__name__}: {exc}"
    message = connection.recv(MAX_REQUEST_BYTES)
    if not message:
        return  # the grader ended before it drew the cases
    if prepared is not None:
        prepared.cases = read_cases(Path(json.loads(message)["cases"]))
        if warm:
            try:
                warm_up(prepared, chapters)
            except Exception:  # noqa: BLE001 - only speed is lost; the server's log shows why
                traceback.print_exc()
    # What the warm-up unloaded goes now; the rest is frozen, so a forked process's collections
    # skip it instead of copying every page of it (the fork-server use in the gc module's docs).
    gc.collect()
    gc.freeze()
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    running: dict[int, int] = {}
    while True:
        readable, _, _ = select.select([connection, wake_read], [], [])
        if wake_read in readable:
            while True:
                try:
                    os.read(wake_read, 512)
                except BlockingIOError:
                    break
            _reap(running, connection)
        if connection in readable:
            message, fds, _, _ = socket.recv_fds(connection, MAX_REQUEST_BYTES, 1)
            if not message:
                return  # the grader is done (or gone: then the children die with this process)
            request = json.loads(message)
            sys.stdout.flush()
            sys.stderr.flush()
            child = os.fork()
            if child == 0:
                try:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    connection.close()  # student code must not send the server requests
                    os.close(wake_read)
                    os.close(wake_write)
                    _start_submission(request, fds[0], prepared, problem)
                finally:
                    os._exit(70)  # only when starting the submission failed; its traceback is in its output
            os.close(fds[0])
            running[child] = request["id"]
            connection.send(json.dumps({"id": request["id"], "pid": child}).encode())


def probe(scratch: Path) -> None:
    """Enter the namespaces and show that writes outside `scratch` fail and only a loopback of its own is left."""
    enter_namespaces(scratch, [], 64)
    (scratch / "inside").write_text("ok")
    try:
        (scratch.parent / f"outside-{os.getpid()}").write_text("escaped")
        raise SystemExit("a write outside the scratch folder succeeded")
    except OSError:
        pass
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        raise SystemExit(f"the network is reachable (interfaces {interfaces})")
    try:
        socket.create_connection(("192.0.2.1", 9), timeout=2).close()  # TEST-NET-1: any route would try it
    except OSError as exc:
        if exc.errno != errno.ENETUNREACH:
            raise SystemExit(f"the network is reachable ({exc})") from None
    else:
        raise SystemExit("a network connection succeeded")
    print(PROBE_OK)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        probe(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3].split(","), float(sys.argv[4]), sys.argv[5:] == ["--warm"])
    else:
        sys.exit(
            "usage: python -m autograder.grading.worker --serve FD CHAPTERS EXERCISE_TIMEOUT_S [--warm] | --probe SCRATCH"
        )
