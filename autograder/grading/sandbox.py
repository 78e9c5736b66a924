"""The grader's side of a sandboxed run: one submission, one process, one scratch folder.

The process (`worker`) runs in a fresh temporary folder holding copies of the
student's notebooks, with a scrubbed environment, in its own process group, under
a wall-clock limit after which the whole group is killed. Where Linux user
namespaces work (`namespaces_available`), it also runs in its own user, network,
mount and pid namespaces (`unshare`): no network at all, a read-only file system
outside the scratch folder, and every process it started dies with it. Its output
is captured and truncated, never parsed; the one thing read back is the result
file it writes into the scratch folder, which must carry the one-time token the
process got on stdin. The reference solutions and the hidden checks are hidden
from it once it has loaded them.
"""
from __future__ import annotations

import collections
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .. import data, paths
from ..runner import HIDDEN_DIR
from .worker import PROBE_OK

# Seconds a submission gets on top of its exercises' budgets: starting Python, importing
# torch, loading the reference notebooks for the hidden checks.
STARTUP_S = 15.0
# Processes and threads one submission may run at once.
MAX_PROCESSES = 64
# Bytes of a submission's output kept from its start and from its end.
OUTPUT_KEPT = 16 * 1024
MAX_REPORT_BYTES = 32 * 2**20
SCRATCH_PREFIX = "course-grade-"
# The folder holding this `autograder` package: the worker runs the very code the grader runs.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = ["unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]


@dataclass
class RunOutcome:
    """What came back from one run: the report (untrusted JSON, not yet validated) or why there is none."""

    report: object | None
    problem: str
    output: str
    seconds: float


def _worker_command(*args: str) -> list[str]:
    return [sys.executable, "-s", "-m", "autograder.grading.worker", *args]


def _confined(command: list[str]) -> list[str]:
    """`command` in fresh namespaces, killed with the grader (setpriv's parent-death signal)."""
    deathsig = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
    return deathsig + NAMESPACES + command


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
    """A writable tiktoken cache in the scratch folder, holding links to the grader's cached files.

    tiktoken caches every file it reads, local ranks files included, and raises when its
    cache folder is read-only, as the grader's is inside the sandbox.
    """
    cache = home / "tiktoken"
    cache.mkdir()
    # `import autograder` pointed it at the data folder's cache (data.configure_tiktoken_cache).
    source = Path(os.environ.get("TIKTOKEN_CACHE_DIR", ""))
    if source.name and source.is_dir():
        for file in source.iterdir():
            if file.is_file():
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
        pid = folder.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            remove_tree(folder)
        except PermissionError:
            pass


@lru_cache(maxsize=None)
def namespaces_available() -> tuple[bool, str]:
    """(True, "") when a process can be confined in namespaces here, else (False, why not)."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return False, "unshare(1) is not available"
    scratch = _new_scratch()
    try:
        done = subprocess.run(
            _confined(_worker_command("--probe", str(scratch))),
            cwd=scratch, env=_environment(scratch), capture_output=True, text=True, timeout=120,
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


_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()
_stopping = threading.Event()


def stop_all() -> None:
    """Kill every running submission process (the grader is being interrupted)."""
    _stopping.set()
    with _running_lock:
        for process in _running:
            _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
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
    job.write_text(json.dumps({"notebooks": copies, "scratch": str(scratch), "result": str(scratch / "result.json"), **settings}))
    return job


def _run(command: list[str], home: Path, budget: float, token: str) -> tuple[int, bool, str]:
    """Run `command` in its own process group for at most `budget` seconds, then kill the group;
    `token` is its stdin's one line. Returns (exit status, whether it ran out of time, its output clipped)."""
    with _running_lock:
        if _stopping.is_set():
            raise KeyboardInterrupt
        process = subprocess.Popen(
            command, cwd=home, env=_environment(home), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        _running.add(process)
    try:
        process.stdin.write(f"{token}\n".encode())
        process.stdin.close()
    except OSError:  # it died at once; its exit status tells why
        pass
    output = _OutputTail(process.stdout)
    timed_out = False
    try:
        process.wait(timeout=budget)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(process)  # what it left behind, or all of it on a timeout
        process.wait()
        with _running_lock:
            _running.discard(process)
    return process.returncode, timed_out, output.text()


def run_submission(
    notebooks: dict[str, Path],
    *,
    seed: int,
    exercises: int,
    exercise_timeout_s: float,
    memory_mb: int,
    hide: list[Path],
    namespaces: bool,
) -> RunOutcome:
    """Grade the notebooks (chapter id -> path) of one student in a confined process.

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
            scratch, notebooks, seed=seed, exercise_timeout_s=exercise_timeout_s, memory_mb=memory_mb,
            nproc=_user_tasks() + MAX_PROCESSES, max_processes=MAX_PROCESSES, namespaces=namespaces,
            hide=[str(p) for p in hide], solutions=str(paths.solutions_dir()), hidden_checks=str(HIDDEN_DIR),
        )
        command = _worker_command(str(job))
        budget = exercise_timeout_s * (exercises + len(notebooks)) + STARTUP_S
        token = secrets.token_hex(16)
        returncode, timed_out, log = _run(_confined(command) if namespaces else command, home, budget, token)
        seconds = time.monotonic() - started
        result = scratch / "result.json"
        if timed_out or not result.is_file():
            return RunOutcome(None, _why_no_report(returncode, timed_out, budget, memory_mb), log, seconds)
        try:
            report = json.loads(_read_regular(result, MAX_REPORT_BYTES))
        except (OSError, ValueError, RecursionError) as exc:
            return RunOutcome(None, f"the submission's process left an unreadable report ({type(exc).__name__})", log, seconds)
        if not isinstance(report, dict) or not secrets.compare_digest(str(report.pop("token", "")), token):
            return RunOutcome(None, "the report in the submission's folder was not written by the grader", log, seconds)
        return RunOutcome(report, "", log, seconds)
    finally:
        remove_tree(scratch)
