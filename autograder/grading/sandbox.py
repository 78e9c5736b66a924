"""The grader's side of a sandboxed run: one submission, one process, one scratch folder.

A `ForkServer` imports torch and the checks once, with the references later chapters
import; each submission's process is forked from it (`worker`), so it starts in
milliseconds with all of that in place. The process runs in a fresh temporary folder holding copies of the
student's notebooks, with a scrubbed environment, in its own session, under a
wall-clock limit after which its whole process group is killed. Where Linux user
namespaces work (`namespaces_available`), it also runs in its own user, network,
mount and pid namespaces: no network at all, a read-only file system outside the
scratch folder, and every process it started dies with it. Its output is captured
and truncated, never parsed; the one thing read back is the result file it writes
into the scratch folder, which must carry the one-time token only the grader and
that process know. Everything instructor-only (`instructor_only`) is hidden from it,
and it only produces the hidden checks' outputs (`verdicts` decides them).
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from llmcourse import data

from .. import paths
from ..instructor_only import instructor_only_paths
from . import worker
from .worker import PROBE_OK

# Seconds a submission gets on top of its exercises' budgets: forking, entering namespaces.
STARTUP_S = 15.0
# Seconds the fork server may take to import torch and load the references.
SERVER_START_S = 300.0
# Processes and threads one submission may run at once.
MAX_PROCESSES = 64
# Bytes of a submission's output kept from its start and from its end.
OUTPUT_KEPT = 16 * 1024
MAX_REPORT_BYTES = 32 * 2**20
SCRATCH_PREFIX = "course-grade-"
# The folder holding this `autograder` package: the worker runs the very code the grader runs.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class RunOutcome:
    """What came back from one run: the report (untrusted JSON, not yet validated) or why there is none."""

    report: object | None
    problem: str
    output: str
    seconds: float


def _worker_command(*args: str) -> list[str]:
    return [sys.executable, "-s", "-m", "autograder.grading.worker", *args]


def _environment(home: Path) -> dict[str, str]:
    """The only variables a submission's process sees."""
    import matplotlib

    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": str(PACKAGE_ROOT),
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8:backslashreplace",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": matplotlib.get_configdir(),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "COURSE_ROOT": str(paths.course_root()),
        "COURSE_DATA_DIR": str(data.data_dir().resolve()),
        "TIKTOKEN_CACHE_DIR": str(home / "tiktoken"),
    }
    if os.environ.get("COURSE_DATA_MANIFEST"):
        env["COURSE_DATA_MANIFEST"] = os.environ["COURSE_DATA_MANIFEST"]
    return env


def _seed_tiktoken_cache(home: Path) -> None:
    """A writable tiktoken cache in the scratch folder, holding links to the grader's GPT-2 files.

    tiktoken caches every file it reads, local ranks files included, and raises when its
    cache folder is read-only, as the grader's is inside the sandbox.
    """
    cache = home / "tiktoken"
    cache.mkdir()
    for file in data.gpt2_tiktoken_cache_files():  # `import autograder` put them there
        (cache / file.name).symlink_to(file.resolve())


def _new_scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")).resolve()


def remove_tree(folder: Path) -> None:
    """Delete `folder` even where student code took away permissions inside it."""

    def retry(function, path, _exc):
        parent = os.path.dirname(path)
        for target in (parent, path):
            try:
                os.chmod(target, stat.S_IRWXU, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
        try:
            function(path)
        except OSError:
            pass

    shutil.rmtree(folder, **({"onexc": retry} if sys.version_info >= (3, 12) else {"onerror": retry}))


def remove_stale_scratch() -> None:
    """Delete scratch folders of graders that are no longer running (killed with -9)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_tree(folder)
        except PermissionError:
            pass


@cache
def namespaces_available() -> tuple[bool, str]:
    """(True, "") when a process can be confined in namespaces here, else (False, why not)."""
    if not sys.platform.startswith("linux"):
        return False, "namespaces need Linux"
    scratch = _new_scratch()
    try:
        done = subprocess.run(
            _worker_command("--probe", str(scratch)),
            cwd=scratch,
            env=_environment(scratch),
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"the namespace probe failed: {exc}"
    finally:
        remove_tree(scratch)
    if done.returncode == 0 and PROBE_OK in done.stdout:
        return True, ""
    lines = (done.stdout + done.stderr).strip().splitlines()
    return False, lines[-1] if lines else f"the namespace probe exited with {done.returncode}"


def _user_tasks() -> int:
    """Processes and threads this user runs now (RLIMIT_NPROC counts them all)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/task/[0-9]*/status"):
        try:
            uid_line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        count += int(uid_line.split()[1]) == os.getuid()
    return count


class _OutputTail:
    """Reads a pipe to its end, keeping the first and the last OUTPUT_KEPT bytes."""

    def __init__(self, pipe):
        self.head = b""
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.total = 0
        self.thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self.thread.start()

    def _read(self, pipe) -> None:
        try:
            while chunk := pipe.read1(65536):
                self.total += len(chunk)
                if len(self.head) < OUTPUT_KEPT:
                    room = OUTPUT_KEPT - len(self.head)
                    self.head, chunk = self.head + chunk[:room], chunk[room:]
                if chunk:
                    self.tail.append(chunk)
                    self.tail_size += len(chunk)
                    while self.tail_size - len(self.tail[0]) >= OUTPUT_KEPT:
                        self.tail_size -= len(self.tail.popleft())
        except (OSError, ValueError):
            pass
        finally:
            pipe.close()

    def text(self) -> str:
        self.thread.join(timeout=5)
        tail = b"".join(self.tail)[-OUTPUT_KEPT:]
        dropped = self.total - len(self.head) - len(tail)
        middle = f"\n[... {dropped} bytes of output left out ...]\n".encode() if dropped > 0 else b""
        return (self.head + middle + tail).decode("utf-8", "replace")


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of `path`, refusing links and anything larger than `limit` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        content = file.read(limit + 1)
    if len(content) > limit:
        raise ValueError("too large")
    return content


class ServerStopped(Exception):
    """The fork server ended while submissions were still to be graded."""


class _Started:
    """One submission process of the fork server: its pid once started, its exit status once ended."""

    def __init__(self):
        self.pid: int | None = None
        self.status: int | None = None
        self.started = threading.Event()
        self.ended = threading.Event()


class ForkServer:
    """A `worker --serve` process that imports torch and the checks of `chapters` and loads the
    references later chapters import while the grader draws the split checks' cases; once
    given them (`give_cases`) it forks one confined process per submission (`run`). With `warm`,
    it grades the references once before it forks (`worker.warm_up`): worth it for a class,
    not for one submission."""

    def __init__(self, chapters: list[str], exercise_timeout_s: float, warm: bool = False):
        self._cases_folder = _new_scratch()
        self._cases: Path | None = None
        self._arguments = (",".join(chapters), f"{exercise_timeout_s:g}", *(["--warm"] if warm else []))
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._stopped = False
        self._start()

    def give_cases(self, cases: dict[str, bytes]) -> None:
        """The split checks' cases (check id -> bytes), which the server reads before its first fork."""
        path = self._cases_folder / "cases.json"
        worker.write_cases(path, cases)
        with self._lock:
            self._cases = path
            self._send_cases()

    def _send_cases(self) -> None:
        try:
            self._connection.send(json.dumps({"cases": str(self._cases)}).encode())
        except OSError:
            pass  # the server is gone; the next run starts another

    def _start(self) -> None:
        self._connection, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._home = _new_scratch()
        (self._home / "tmp").mkdir()
        with theirs:
            self._process = subprocess.Popen(
                _worker_command("--serve", str(theirs.fileno()), *self._arguments),
                pass_fds=[theirs.fileno()],
                cwd=self._home,
                env=_environment(self._home),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._log = _OutputTail(self._process.stdout)
        self._waiting: dict[int, _Started] = {}  # this server's submission processes, by request id
        threading.Thread(
            target=self._read_replies, args=(self._connection, self._process, self._waiting), daemon=True
        ).start()
        if self._cases is not None:  # a server started again after one died
            self._send_cases()

    def _read_replies(self, connection: socket.socket, process: subprocess.Popen, waiting: dict[int, _Started]) -> None:
        try:
            while message := connection.recv(4096):
                reply = json.loads(message)
                with self._lock:
                    started = waiting.get(reply["id"])
                if started is None:  # its submission stopped waiting for it to start
                    continue
                if "pid" in reply:
                    started.pid = reply["pid"]
                    started.started.set()
                else:
                    started.status = reply["status"]
                    started.ended.set()
        except OSError:
            pass
        process.wait()  # ended: whoever still waits learns it
        with self._lock:
            for started in waiting.values():
                started.started.set()
                started.ended.set()

    def _restart_if_ended(self) -> None:
        if self._process.poll() is not None and not self._stopped:
            self.close()
            self._start()

    def run(self, job: Path, token: str, home: Path, budget: float) -> tuple[int, bool, str]:
        """Start a submission process on `job` (its folder `home`) and wait at most `budget` seconds
        once it runs, then kill its process group. Returns (exit status, whether it ran out of time,
        its output clipped); ServerStopped when the server ended first."""
        started = _Started()
        reading, writing = os.pipe()
        request = {"job": str(job), "token": token, "env": _environment(home)}
        with self._lock:
            if self._cases is None:
                raise RuntimeError("give the server the split checks' cases before the first submission")
            if self._stopped:
                os.close(reading)
                os.close(writing)
                raise KeyboardInterrupt
            self._restart_if_ended()
            request["id"] = request_id = next(self._ids)
            waiting = self._waiting
            waiting[request_id] = started
            try:
                socket.send_fds(self._connection, [json.dumps(request).encode()], [writing])
            except OSError:
                pass  # the server is gone; the reply thread ends every wait
            finally:
                os.close(writing)
        output = _OutputTail(os.fdopen(reading, "rb"))
        try:
            started.started.wait(SERVER_START_S)
            if started.pid is None:
                raise ServerStopped(f"the grading server stopped: {self._log.text()[-2000:]}")
            timed_out = not started.ended.wait(budget)
            _kill_group(started.pid)  # what it left behind, or all of it on a timeout
            started.ended.wait()
        finally:
            with self._lock:
                del waiting[request_id]
        if started.status is None:
            raise ServerStopped(f"the grading server stopped: {self._log.text()[-2000:]}")
        return started.status, timed_out, output.text()

    def stop(self) -> None:
        """Kill every submission process and the server (the grader is stopping)."""
        with self._lock:
            self._stopped = True
            for started in self._waiting.values():
                if started.pid is not None:
                    _kill_group(started.pid)
        self.close()

    def close(self) -> None:
        """End the server: it exits once the connection closes; its folder goes."""
        try:
            self._connection.shutdown(socket.SHUT_RDWR)  # also wakes the thread reading replies
        except OSError:
            pass
        self._connection.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _kill_group(self._process.pid)
            self._process.wait()
        remove_tree(self._home)

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self.stop()
        remove_tree(self._cases_folder)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _why_no_report(returncode: int, timed_out: bool, budget: float, memory_mb: int) -> str:
    if timed_out:
        return f"the submission was stopped after {budget:g} s (its time limit)"
    # A signal shows as -N (the worker itself) or 128 + N (its supervisor in the namespaces).
    signum = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if signum == signal.SIGKILL:
        return f"the submission's process was killed, most likely for using more than its memory (limit {memory_mb} MB)"
    if signum == signal.SIGXFSZ:
        return f"the submission wrote a file larger than its limit ({memory_mb} MB)"
    names = {s.value: s.name for s in signal.Signals}
    if signum in names:
        return f"the submission's process crashed ({names[signum]})"
    return f"the submission's process exited before reporting (os._exit or a crash; exit status {returncode})"


def _write_job(scratch: Path, notebooks: dict[str, Path], **settings) -> Path:
    """Copy the notebooks into `scratch` and write the worker's job file there; returns its path."""
    copies = {}
    for chapter_id, source in notebooks.items():
        copy = scratch / "notebooks" / chapter_id / f"{chapter_id}.ipynb"
        copy.parent.mkdir(parents=True)
        shutil.copyfile(source, copy)
        copies[chapter_id] = str(copy)
    job = scratch / "job.json"
    job.write_text(
        json.dumps({"notebooks": copies, "scratch": str(scratch), "result": str(scratch / "result.json"), **settings})
    )
    return job


def run_submission(
    server: ForkServer,
    notebooks: dict[str, Path],
    *,
    exercises: int,
    exercise_timeout_s: float,
    memory_mb: int,
    hide: list[Path],
    namespaces: bool,
) -> RunOutcome:
    """Grade the notebooks (chapter id -> path) of one student in a confined process of `server`.

    The wall-clock limit is `exercise_timeout_s` for each exercise and each notebook
    (its cells are loaded under that budget) plus STARTUP_S.
    """
    started = time.monotonic()
    scratch = _new_scratch()
    try:
        home = scratch / "home"
        (home / "tmp").mkdir(parents=True)
        _seed_tiktoken_cache(home)
        job = _write_job(
            scratch,
            notebooks,
            home=str(home),
            memory_mb=memory_mb,
            nproc=_user_tasks() + MAX_PROCESSES,
            max_processes=MAX_PROCESSES,
            namespaces=namespaces,
            hide=[str(p) for p in hide],
            instructor_only=[str(p) for p in instructor_only_paths()],
        )
        budget = exercise_timeout_s * (exercises + len(notebooks)) + STARTUP_S
        token = secrets.token_hex(16)
        try:
            returncode, timed_out, log = server.run(job, token, home, budget)
        except ServerStopped:  # its children died with it: once more, with a fresh one
            returncode, timed_out, log = server.run(job, token, home, budget)
        seconds = time.monotonic() - started
        result = scratch / "result.json"
        if timed_out or not result.is_file():
            return RunOutcome(None, _why_no_report(returncode, timed_out, budget, memory_mb), log, seconds)
        try:
            report = json.loads(_read_regular(result, MAX_REPORT_BYTES))
        except (OSError, ValueError, RecursionError) as exc:
            return RunOutcome(
                None, f"the submission's process left an unreadable report ({type(exc).__name__})", log, seconds
            )
        if not isinstance(report, dict) or not secrets.compare_digest(str(report.pop("token", "")), token):
            return RunOutcome(None, "the report in the submission's folder was not written by the grader", log, seconds)
        return RunOutcome(report, "", log, seconds)
    finally:
        remove_tree(scratch)
