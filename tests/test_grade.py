"""`course grade`: a class graded in sandboxed processes, resumable, and unharmed by hostile submissions."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from autograder import loader, manifest, paths
from autograder.grading import batch, sandbox, verdicts
from autograder.grading.results import hidden_message
from autograder.grading.submissions import safe_name
from autograder.grading.verdicts import SplitChecks
from autograder.scoring import CheckResult

ROOT = paths.course_root()
CHAPTER = "ch02"
SEED = 4242
OUTPUTS = ("gradebook.csv", "summary.md", "totals.png")
NAMESPACES = sandbox.namespaces_available()[0]


@pytest.fixture(scope="module", autouse=True)
def needs_solutions():
    if not paths.solution_notebook(CHAPTER).exists():
        pytest.skip("needs solutions/")


def course_grade(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder.cli", "grade", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def solution() -> dict:
    return loader.read_notebook(paths.solution_notebook(CHAPTER))


def stub() -> dict:
    return loader.read_notebook(paths.student_notebook(CHAPTER))


def source_of(notebook: dict, exercise_id: str) -> str:
    chapter = manifest.load().chapter(CHAPTER)
    return loader.cell_source(notebook["cells"][loader.cell_index(notebook["cells"], chapter, exercise_id)])


def edited(notebook: dict, exercise_id: str, source: str) -> dict:
    changed = copy.deepcopy(notebook)
    changed["cells"] = loader.with_cell_source(notebook["cells"], manifest.load().chapter(CHAPTER), exercise_id, source)
    return changed


def with_setup_prefix(notebook: dict, code: str) -> dict:
    changed = copy.deepcopy(notebook)
    cell = next(c for c in changed["cells"] if "setup" in (c.get("metadata") or {}).get("tags", []))
    cell["source"] = code + loader.cell_source(cell)
    return changed


def hand_in(root: Path, student: str, content: dict | bytes, *, layout: str = "nbgrader") -> Path:
    path = {
        "nbgrader": root / student / CHAPTER / f"{CHAPTER}.ipynb",
        "flat": root / student / f"{CHAPTER}.ipynb",
        "single": root / f"{student}.ipynb",
    }[layout]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as file:
        return {row["student"]: row for row in csv.DictReader(file)}


def records(out: Path) -> dict[str, dict]:
    found = (json.loads(p.read_text(encoding="utf-8")) for p in (out / "submissions").glob("*.json"))
    return {r["student"]: r for r in found}


def exercises(record: dict) -> dict[str, dict]:
    return {ex["id"]: ex for ch in record["chapters"] for ex in ch["exercises"]}


def final_outputs(out: Path) -> dict[str, object]:
    """Everything a run hands out, less the one timing (Gradescope's execution_time)."""
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    files |= {f"{p.relative_to(out)}": p.read_bytes() for p in (out / "feedback").rglob("*.md")}
    for path in (out / "gradescope").glob("*/results.json"):
        obj = json.loads(path.read_text(encoding="utf-8"))
        del obj["execution_time"]
        files[f"gradescope/{path.parent.name}"] = obj
    return files


@pytest.fixture(scope="module")
def small_class(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("class") / "submitted"
    hand_in(root, "full", solution())
    hand_in(root, "zero", stub())
    hand_in(root, "partial", edited(solution(), "ch02.input_embeddings", source_of(stub(), "ch02.input_embeddings")))
    return root


@pytest.fixture(scope="module")
def graded(small_class, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("graded") / "results"
    done = course_grade(small_class, "--out", out, "--seed", SEED, "--workers", 2)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


def test_gradebook_has_a_column_per_exercise_chapter_total_and_total(graded):
    ids = [ex.id for ex in manifest.load().chapter(CHAPTER).exercises]
    with open(graded / "gradebook.csv", newline="", encoding="utf-8") as file:
        header = next(csv.reader(file))
    assert header == ["student", *ids, CHAPTER, "total"]
    book = gradebook(graded)
    assert sorted(book) == ["full", "partial", "zero"]
    assert book["full"]["total"] == book["full"][CHAPTER] == "17"
    assert all(book["full"][i] != "0" for i in ids)
    assert book["zero"]["total"] == "0"
    assert (
        book["partial"]["total"],
        book["partial"]["ch02.input_embeddings"],
        book["partial"]["ch02.gpt_dataset"],
    ) == ("15", "0", "3")


def test_every_student_gets_feedback_and_gradescope_results(graded):
    feedback = (graded / "feedback" / "partial.md").read_text(encoding="utf-8")
    assert "15 / 17 points" in feedback and "ch02.input_embeddings" in feedback and "not_implemented" in feedback
    chapter = (graded / "feedback" / "partial" / "ch02.md").read_text(encoding="utf-8")
    assert "ch02 · Working with text data: 15 / 17 points" in chapter and "not_implemented" in chapter
    results = json.loads((graded / "gradescope" / "partial" / "results.json").read_text(encoding="utf-8"))
    assert set(results) >= {"score", "execution_time", "output", "tests"} and results["score"] == 15
    assert {"name", "score", "max_score", "output", "visibility"} <= set(results["tests"][0])
    visibility = {t["visibility"] for t in results["tests"]}
    assert visibility == {"visible", "after_published"}
    assert abs(sum(t["max_score"] for t in results["tests"]) - 17) < 0.01
    summary = (graded / "summary.md").read_text(encoding="utf-8")
    assert "| ch02.input_embeddings | 2 | 0.67 | 2 |" in summary and f"seed {SEED}" in summary
    assert (graded / "totals.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((graded / "grading.json").read_text())["seed"] == SEED


@pytest.mark.xdist_group("grade_every_chapter")
def test_every_chapters_reference_gets_full_marks_in_the_sandbox(tmp_path):
    """The sandbox leaves every chapter what its checks need (tiktoken's cache, the data folder, a scratch folder)."""
    course = manifest.load()
    chapters = [ch for ch in course.chapters if paths.solution_notebook(ch.id).exists()]
    for chapter in chapters:
        folder = tmp_path / "class" / "reference" / chapter.id
        folder.mkdir(parents=True)
        shutil.copy(paths.solution_notebook(chapter.id), folder / f"{chapter.id}.ipynb")
    done = course_grade(tmp_path / "class", "--out", tmp_path / "out", "--seed", SEED, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    row = gradebook(tmp_path / "out")["reference"]
    assert {ch.id: float(row[ch.id]) for ch in chapters} == {ch.id: ch.max_score for ch in chapters}


def test_a_warmed_up_server_grades_like_a_cold_one(graded, small_class, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "WARM_UP_FROM", 1)
    batch.grade_class(
        manifest.load(), batch.Options(small_class, tmp_path / "out", workers=2, seed=SEED, progress=False)
    )
    assert final_outputs(tmp_path / "out") == final_outputs(graded)


def test_a_second_run_into_the_same_folder_needs_resume(graded, small_class):
    done = course_grade(small_class, "--out", graded, "--seed", SEED)
    assert done.returncode == 2 and "--resume" in done.stderr
    done = course_grade(small_class, "--out", graded, "--seed", SEED + 1, "--resume")
    assert done.returncode == 2 and f"--seed {SEED}" in done.stderr


def test_resume_grades_only_the_missing_submission(graded, small_class, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(graded, out)
    (out / "submissions" / "partial.json").unlink()
    (out / "gradebook.csv").unlink()
    done = course_grade(small_class, "--out", out, "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "graded 1 submissions, 2 kept from before" in done.stdout
    assert final_outputs(out) == final_outputs(graded)


def test_a_run_killed_with_sigkill_then_resumed_ends_like_an_uninterrupted_one(graded, small_class, tmp_path):
    out = tmp_path / "results"
    command = [
        sys.executable,
        "-m",
        "autograder.cli",
        "grade",
        str(small_class),
        "--out",
        str(out),
        "--seed",
        str(SEED),
        "--workers",
        "1",
    ]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list((out / "submissions").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert 1 <= len(list((out / "submissions").glob("*.json"))) < 3
    done = course_grade(small_class, "--out", out, "--resume")
    assert done.returncode == 0, done.stdout + done.stderr
    assert final_outputs(out) == final_outputs(graded)
    assert not list(Path(tempfile.gettempdir()).glob(f"{sandbox.SCRATCH_PREFIX}{run.pid}-*"))


def grading_processes(prefix: str) -> list[int]:
    """Pids of the fork server and its submission processes working in folders starting with `prefix`."""
    found = []
    for cwd in Path("/proc").glob("[0-9]*/cwd"):
        try:
            if os.readlink(cwd).startswith(prefix) and b"--serve" in (cwd.parent / "cmdline").read_bytes():
                found.append(int(cwd.parent.name))
        except OSError:
            continue
    return found


def test_killing_the_grader_leaves_no_submission_process_running(tmp_path):
    root = tmp_path / "class"
    hand_in(root, "loops", with_setup_prefix(solution(), "while True:\n    pass\n"))
    command = [
        sys.executable,
        "-m",
        "autograder.cli",
        "grade",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--workers",
        "1",
    ]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = str(Path(tempfile.gettempdir()).resolve() / f"{sandbox.SCRATCH_PREFIX}{run.pid}-")
    deadline = time.monotonic() + 60
    while len(grading_processes(prefix)) < 2 and time.monotonic() < deadline:  # the server and the submission
        time.sleep(0.05)
    assert len(grading_processes(prefix)) >= 2, "the submission never started"
    run.send_signal(signal.SIGKILL)
    run.wait()
    deadline = time.monotonic() + 10
    while grading_processes(prefix) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert grading_processes(prefix) == []


def test_a_grading_server_that_died_is_replaced_for_the_next_submission(tmp_path):
    with sandbox.ForkServer([CHAPTER], 60) as server:
        server.give_cases(SplitChecks(manifest.load(), [CHAPTER], SEED).cases)
        os.kill(server._process.pid, signal.SIGKILL)
        run = sandbox.run_submission(
            server,
            {CHAPTER: paths.solution_notebook(CHAPTER)},
            exercises=6,
            exercise_timeout_s=60,
            memory_mb=manifest.load().limits.memory_mb,
            hide=[],
            namespaces=NAMESPACES,
        )
    outcomes = {c["outcome"] for c in run.report["checks"]}
    assert (
        run.problem == "" and "produced" in outcomes and outcomes <= {"produced", "skipped"}
    )  # skipped: no GPT-2 files


@pytest.mark.parametrize(
    ("student", "safe"),
    [
        ("alice", "alice"),
        ("..", "student-"),
        ("../../etc/passwd", "_.._etc_passwd-"),
        ("Zoë M", "Zo__M-"),
        (".hidden", "hidden-"),
    ],
)
def test_safe_names_stay_inside_the_results_folder(student, safe):
    name = safe_name(student)
    assert name.startswith(safe) and "/" not in name and not name.startswith(".")
    assert (Path("/results") / name).resolve().parent == Path("/results")


def test_the_network_guard_refuses_internet_sockets_with_a_clear_message():
    code = (
        "import socket\n"
        "from autograder.grading import guard\n"
        "guard.block_network()\n"
        "a, b = socket.socketpair()\n"  # Unix sockets (multiprocessing) still work
        "a.sendall(b'ok'); assert b.recv(2) == b'ok'\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
        "except PermissionError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "network access is not allowed" in done.stdout, done.stderr


@pytest.mark.skipif(not NAMESPACES, reason="no user namespaces here")
def test_the_sandbox_network_is_a_loopback_of_its_own(listener):
    code = (
        "import socket\n"
        "from autograder.grading import confine\n"
        "confine.unshare_namespaces()\n"
        "inside = socket.create_server(('127.0.0.1', 0))\n"
        "socket.create_connection(inside.getsockname(), timeout=2)\n"
        "print('loopback works')\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}), timeout=2)\n"
        "except OSError:\n"
        "    print('the host is out of reach')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split("\n")[:2] == ["loopback works", "the host is out of reach"], done.stderr


def test_grade_help_shows_examples():
    done = course_grade("--help")
    assert done.returncode == 0 and "example" in done.stdout and "--resume" in done.stdout


# Hostile submissions, graded in one batch with a short time limit per exercise.
TIMEOUT_S = 2


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def mixed_submission(port: int, out: Path, root: Path) -> dict:
    """One notebook that tries something forbidden in each exercise cell."""
    raw_socket = (
        "import _socket\n"
        "try:\n"
        "    _raw = _socket.socket()\n"
        f"    _raw.connect(('127.0.0.1', {port}))\n"
        "except OSError:\n"
        "    pass\n"
    )
    escape = (
        "for _path in [{!r}, {!r}]:\n"
        "    try:\n"
        "        open(_path, 'w').write('overwritten')\n"
        "    except OSError:\n"
        "        pass\n"
    ).format(str(out / "pwned.txt"), str(root / "full" / CHAPTER / f"{CHAPTER}.ipynb"))
    loud = "import os\nprint('All tests passed')\nos.write(1, b'All tests passed\\n' + b'\\xff\\xfe' * 100 + b'x' * 20_000_000)\n"
    notebook = solution()
    changes = {
        "ch02.simple_tokenizer": "import sys\nsys.exit(0)\n" + source_of(notebook, "ch02.simple_tokenizer"),
        "ch02.bpe_train": "_hog = bytearray(50 * 10**9)\n" + source_of(notebook, "ch02.bpe_train"),
        "ch02.bpe_tokenizer": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        + source_of(notebook, "ch02.bpe_tokenizer"),
        "ch02.gpt_dataset": raw_socket + escape + source_of(notebook, "ch02.gpt_dataset"),
        "ch02.create_dataloader": loud + source_of(stub(), "ch02.create_dataloader"),
        "ch02.input_embeddings": source_of(notebook, "ch02.input_embeddings").replace(
            "class InputEmbedding(", "class InputEmbeddings("
        ),
    }
    for exercise_id, source in changes.items():
        notebook = edited(notebook, exercise_id, source)
    return notebook


def rearranged() -> dict:
    """bpe_train's cell deleted, gpt_dataset's twice, input_embeddings' moved up to the first exercise."""
    notebook = solution()
    chapter = manifest.load().chapter(CHAPTER)
    cells = notebook["cells"]
    index = lambda ex: loader.cell_index(cells, chapter, ex)  # noqa: E731
    cells.insert(index("ch02.gpt_dataset"), copy.deepcopy(cells[index("ch02.gpt_dataset")]))
    moved = cells.pop(index("ch02.input_embeddings"))
    cells.insert(index("ch02.simple_tokenizer"), moved)
    del cells[index("ch02.bpe_train")]
    return notebook


# Code that patches what the checks compare with, each put before the stubs' gpt_dataset cell.
PATCHES = {
    "patches-allclose": "import torch\ntorch.allclose = lambda *args, **kwargs: True\n",
    "patches-assert-close": "import torch.testing\ntorch.testing.assert_close = lambda *args, **kwargs: None\n",
    "patches-tensor-eq": "import torch\ntorch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)\n",
    "patches-the-checks": "import autograder.compare as _c\n_c.fail = _c.expect = lambda *args, **kwargs: None\n",
    "rewrites-the-checks": "import autograder.compare as _c\n_c.expect.__code__ = (lambda condition, message: None).__code__\n",
    "loosens-the-tolerance": "import autograder.compare as _c\n_c.expect_close.__defaults__ = (1e9, 1e9)\n",
}
# Reads the reference notebook and the hidden checks, and fails loudly if either has any content.
PEEK = (
    "import pathlib\n"
    "_seen = [str(p) for p in pathlib.Path({root!r}).glob('solutions/*/*.ipynb')]"
    " + [str(p) for p in pathlib.Path({root!r}).glob('instructor/*/*.py')]\n"
    "_read = [p for p in _seen if pathlib.Path(p).read_bytes().strip()]\n"
    "if _read:\n"
    "    raise RuntimeError(f'read {{len(_read)}} files of the instructor')\n"
)
# Writes a report in which every check passed where the grader's would go, then leaves.
FORGE = (
    "import json, os\n"
    "_job = json.loads(open('../job.json').read())\n"
    "_checks = [{{'exercise_id': ex, 'name': 'x', 'status': 'passed', 'message': '', 'visibility': 'public', 'seconds': 0.0}}"
    " for ex in {exercises!r}]\n"
    "open(_job['result'], 'w').write(json.dumps({{'checks': _checks}}))\n"
    "os._exit(0)\n"
)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, listener) -> tuple[Path, Path, dict[str, bytes]]:
    base = tmp_path_factory.mktemp("hostile")
    root, out = base / "submitted", base / "results"
    port = listener.getsockname()[1]
    hand_in(root, "full", solution())
    hand_in(root, "stub", stub())
    hand_in(root, "mixed", mixed_submission(port, out, root))
    if NAMESPACES or os.geteuid() != 0:  # root without namespaces has no kernel cap on processes
        hand_in(
            root, "forkbomb", edited(solution(), "ch02.input_embeddings", "import os\nwhile True:\n    os.fork()\n")
        )
    hand_in(root, "exits", edited(solution(), "ch02.bpe_train", "import os\nos._exit(0)\n"))
    for student, patch in PATCHES.items():
        hand_in(root, student, edited(stub(), "ch02.gpt_dataset", patch + source_of(stub(), "ch02.gpt_dataset")))
    peek = PEEK.format(root=str(paths.course_root()))
    hand_in(root, "peeks", edited(solution(), "ch02.gpt_dataset", peek + source_of(solution(), "ch02.gpt_dataset")))
    forge = FORGE.format(exercises=[ex.id for ex in manifest.load().chapter(CHAPTER).exercises])
    hand_in(root, "forges", edited(stub(), "ch02.input_embeddings", forge + source_of(stub(), "ch02.input_embeddings")))
    hand_in(
        root,
        "loops",
        edited(
            solution(),
            "ch02.bpe_train",
            "def train_bpe(text, vocab_size, special_tokens):\n    while True:\n        pass\n",
        ),
    )
    hand_in(root, "hangs-at-import", with_setup_prefix(solution(), "while True:\n    pass\n"))
    ignores = "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    time.sleep(1)\n"
    hand_in(root, "a-hang-ignoring-alarms", with_setup_prefix(solution(), ignores))
    hand_in(root, "malformed", b'{"cells": [{"cell_type": "code", ')
    hand_in(root, "empty", b"")
    hand_in(root, "latin1", json.dumps(solution()).encode().replace(b"Hello", b"H\xe9llo\xff", 1))
    hand_in(root, "rearranged", rearranged())
    hand_in(root, "wrong-chapter", loader.read_notebook(paths.solution_notebook("ch03")))
    hand_in(root, "Zoë anne", solution(), layout="flat")
    hand_in(root, "...", stub())
    hand_in(root, "solo", solution(), layout="single")
    (root / "linked" / CHAPTER).mkdir(parents=True)
    (root / "linked" / CHAPTER / f"{CHAPTER}.ipynb").symlink_to(root / "full" / CHAPTER / f"{CHAPTER}.ipynb")
    before = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    done = course_grade(
        root, "--out", out, "--seed", SEED, "--workers", 2, "--timeout", TIMEOUT_S, "--no-mistake-names", timeout=240
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root, out, before


@pytest.fixture(scope="module")
def hostile_records(hostile) -> dict[str, dict]:
    return records(hostile[1])


def assert_graded_in_full(record: dict, except_for: tuple[str, ...] = ()):
    for ex_id, ex in exercises(record).items():
        if ex_id not in except_for and ex_id != "ch02.create_dataloader":  # it builds on gpt_dataset
            assert ex["status"] == "passed", (record["student"], ex_id, ex["message"])


def test_the_rest_of_a_hostile_batch_is_graded(hostile_records):
    assert hostile_records["full"]["score"] == 17 and hostile_records["solo"]["score"] == 17
    assert hostile_records["Zoë anne"]["score"] == 17
    assert hostile_records["stub"]["score"] == 0 and hostile_records["..."]["score"] == 0


def test_odd_student_names_keep_their_id_in_the_gradebook_and_safe_file_names(hostile):
    out = hostile[1]
    book = gradebook(out)
    assert book["Zoë anne"]["total"] == "17" and book["..."]["total"] == "0"
    names = [p.name for p in (out / "feedback").iterdir()]
    assert all(not n.startswith(".") and n.isascii() and " " not in n for n in names)
    folders = {p.parent for p in out.rglob("*.md") if p.name != "summary.md"}
    assert folders <= {out / "feedback"} | {out / "feedback" / n for n in names}


def test_sys_exit_memory_bomb_network_rename_and_loud_output_cost_only_their_exercises(hostile_records, listener):
    record = hostile_records["mixed"]
    ex = exercises(record)
    assert (ex["ch02.simple_tokenizer"]["status"], ex["ch02.simple_tokenizer"]["score"]) == ("error", 0)
    assert "SystemExit" in ex["ch02.simple_tokenizer"]["message"]
    assert ex["ch02.bpe_train"]["score"] == 0 and "MemoryError" in ex["ch02.bpe_train"]["message"]
    assert f"{manifest.load().limits.memory_mb} MB" in ex["ch02.bpe_train"]["message"]
    assert (
        ex["ch02.bpe_tokenizer"]["score"] == 0
        and "network access is not allowed" in ex["ch02.bpe_tokenizer"]["message"]
    )
    assert ex["ch02.gpt_dataset"]["status"] == "passed"
    assert (ex["ch02.create_dataloader"]["status"], ex["ch02.create_dataloader"]["score"]) == ("not_implemented", 0)
    assert ex["ch02.input_embeddings"]["status"] == "missing"
    assert "no class named InputEmbedding; found InputEmbeddings" in ex["ch02.input_embeddings"]["message"]
    assert "All tests passed" in record["output"] and "bytes of output left out" in record["output"]
    assert len(record["output"]) < 100_000
    with pytest.raises(BlockingIOError):
        listener.accept()  # neither the guarded nor the raw socket got through


@pytest.mark.skipif(not NAMESPACES, reason="only the namespace sandbox makes the file system read-only")
def test_writes_outside_the_scratch_folder_change_nothing(hostile):
    root, out, before = hostile
    assert not (out / "pwned.txt").exists()
    after = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before


def test_a_fork_bomb_is_bounded_and_costs_its_exercise(hostile_records):
    if "forkbomb" not in hostile_records:
        pytest.skip("no kernel cap on processes for root without namespaces")
    record = hostile_records["forkbomb"]
    bombed = exercises(record)["ch02.input_embeddings"]
    assert (bombed["status"], bombed["score"]) == ("error", 0) and "fork at most" in bombed["message"]
    assert_graded_in_full(record, except_for=("ch02.input_embeddings",))


def test_os_exit_gives_zeros_with_a_message(hostile_records):
    record = hostile_records["exits"]
    assert record["status"] == "error" and record["score"] == 0
    assert "exited before reporting" in record["message"]
    assert all(ex["status"] == "error" and ex["message"] == record["message"] for ex in exercises(record).values())


@pytest.mark.parametrize("student", sorted(PATCHES))
def test_patching_what_the_checks_compare_with_gives_zero_and_names_it(hostile_records, student):
    record = hostile_records[student]
    assert record["score"] == 0 and record["status"] == "error"
    assert "replaced functions that grading relies on" in record["message"]
    patched = {
        "patches-allclose": "torch.allclose",
        "patches-assert-close": "torch.testing.assert_close",
        "patches-tensor-eq": "torch.Tensor.__eq__",
        "patches-the-checks": "autograder.compare.expect",
        "rewrites-the-checks": "autograder.compare.expect",
        "loosens-the-tolerance": "autograder.compare.expect_close",
    }[student]
    assert patched in record["message"]


@pytest.mark.skipif(not NAMESPACES, reason="files are hidden only inside the sandbox's namespaces")
def test_the_reference_and_the_hidden_checks_cannot_be_read(hostile_records):
    assert_graded_in_full(hostile_records["peeks"])


def test_a_report_forged_by_the_submission_is_refused(hostile_records):
    record = hostile_records["forges"]
    assert record["score"] == 0 and "was not written by the grader" in record["message"]


def test_endless_loops_are_stopped(hostile_records):
    loops = exercises(hostile_records["loops"])
    assert (
        loops["ch02.bpe_train"]["score"] == 0
        and f"took longer than the {TIMEOUT_S} s" in loops["ch02.bpe_train"]["message"]
    )
    assert_graded_in_full(hostile_records["loops"], except_for=("ch02.bpe_train",))
    at_import = hostile_records["hangs-at-import"]
    assert at_import["score"] == 0
    assert all("an endless loop at import time" in ex["message"] for ex in exercises(at_import).values())
    stubborn = hostile_records["a-hang-ignoring-alarms"]
    assert stubborn["status"] == "error" and stubborn["score"] == 0
    assert "the submission was stopped after" in stubborn["message"]


@pytest.mark.parametrize("student", ["malformed", "empty", "latin1"])
def test_unreadable_notebooks_get_error_zeros(hostile_records, student):
    record = hostile_records[student]
    assert record["score"] == 0
    for ex in exercises(record).values():
        assert ex["status"] == "error" and "is not a readable notebook" in ex["message"]
        assert f"{student}/{CHAPTER}/{CHAPTER}.ipynb" in ex["message"]


def test_a_linked_notebook_is_not_followed(hostile_records):
    for ex in exercises(hostile_records["linked"]).values():
        assert (ex["status"], ex["score"]) == ("error", 0) and "is a symbolic link" in ex["message"]


def test_deleted_duplicated_and_moved_cells(hostile_records):
    ex = exercises(hostile_records["rearranged"])
    assert ex["ch02.bpe_train"]["status"] == "missing"
    assert ex["ch02.gpt_dataset"]["status"] == "error" and "two cells are marked" in ex["ch02.gpt_dataset"]["message"]
    assert ex["ch02.input_embeddings"]["status"] == "passed" and ex["ch02.simple_tokenizer"]["status"] == "passed"


def test_another_chapters_notebook_is_named_as_such(hostile_records):
    for ex in exercises(hostile_records["wrong-chapter"]).values():
        assert ex["status"] == "missing" and "holds the exercises of ch03, not of ch02" in ex["message"]


def test_hidden_checks_say_pass_or_fail_without_their_inputs():
    def hidden(outcome, message):
        return CheckResult("ch02.bpe_train", "hidden: merges on a random corpus", outcome, message, "hidden")

    generic = "a hidden check found a difference from the reference on inputs drawn at grading time"
    assert hidden_message(hidden("failed", "merge #3 differs: got (b'ab', b'c')"), set()) == generic
    raised = hidden_message(hidden("error", "KeyError: 'harbour' (cell 8, line 3)"), set())
    assert raised == "your code raised KeyError in a hidden check, on inputs drawn at grading time"
    timeout = "took longer than the 2 s this exercise may use (an infinite loop, or a very slow implementation?)"
    assert hidden_message(hidden("error", timeout), set()) == timeout
    broken = "your ch02.bpe_train cell raised NameError: name 'x' is not defined (line 1)"
    assert hidden_message(hidden("error", broken), {broken}) == broken


def test_without_namespaces_the_guard_and_the_limits_still_hold(tmp_path, monkeypatch, listener, capsys):
    monkeypatch.setattr(sandbox, "namespaces_available", lambda: (False, "turned off for this test"))
    root, out = tmp_path / "submitted", tmp_path / "results"
    port = listener.getsockname()[1]
    notebook = edited(
        solution(), "ch02.bpe_train", "_hog = bytearray(50 * 10**9)\n" + source_of(solution(), "ch02.bpe_train")
    )
    network = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
    hand_in(
        root, "guarded", edited(notebook, "ch02.bpe_tokenizer", network + source_of(solution(), "ch02.bpe_tokenizer"))
    )
    outcome = batch.grade_class(manifest.load(), batch.Options(root, out, workers=1, seed=SEED, progress=False))
    assert (
        outcome.sandbox == "rlimits+guard"
        and "without namespaces (turned off for this test)" in capsys.readouterr().err
    )
    ex = exercises(records(out)["guarded"])
    assert (
        ex["ch02.bpe_tokenizer"]["status"] == "error"
        and "network access is not allowed" in ex["ch02.bpe_tokenizer"]["message"]
    )
    assert ex["ch02.bpe_train"]["status"] == "error" and "MemoryError" in ex["ch02.bpe_train"]["message"]
    assert_graded_in_full(records(out)["guarded"], except_for=("ch02.bpe_tokenizer", "ch02.bpe_train"))
    with pytest.raises(BlockingIOError):
        listener.accept()


def test_a_forged_report_or_a_grader_failure_costs_one_submission_only(tmp_path, monkeypatch):
    def fake_run(server, notebooks, **settings):
        student = Path(notebooks[CHAPTER]).parts[-3]
        if student == "crashes-the-grader":
            raise RuntimeError("a bug in the grader")
        forged = {
            "checks": [{"exercise_id": "ch09.everything", "name": "x", "outcome": "passed", "visibility": "public"}]
        }
        odd = {
            "checks": [
                {
                    "exercise_id": "ch02.gpt_dataset",
                    "name": "x",
                    "outcome": "failed",
                    "message": "bad \udcff byte",
                    "visibility": "public",
                }
            ]
        }
        return sandbox.RunOutcome({"forges": forged, "odd-text": odd}.get(student, {"checks": []}), "", "", 0.1)

    monkeypatch.setattr(sandbox, "run_submission", fake_run)
    root, out = tmp_path / "submitted", tmp_path / "results"
    for student in ("crashes-the-grader", "forges", "no-checks", "odd-text"):
        hand_in(root, student, solution())
    outcome = batch.grade_class(manifest.load(), batch.Options(root, out, workers=2, seed=SEED, progress=False))
    found = records(out)
    assert [r["student"] for r in outcome.errors] == ["crashes-the-grader", "forges"]
    assert (
        "the grader failed on this submission (RuntimeError: a bug in the grader)"
        in found["crashes-the-grader"]["message"]
    )
    assert "did not report its checks: the report names a check of no graded exercise" in found["forges"]["message"]
    assert found["forges"]["score"] == 0
    assert all(
        ex["status"] == "error" and ex["score"] == 0 and ex["message"].startswith(verdicts.NOT_REPORTED)
        for ex in exercises(found["no-checks"]).values()
    )
    assert exercises(found["odd-text"])["ch02.gpt_dataset"]["message"].startswith("bad ? byte")
    assert sorted(gradebook(out)) == ["crashes-the-grader", "forges", "no-checks", "odd-text"]


def test_forked_copies_run_student_code_but_never_return_into_the_grader(tmp_path):
    marker = tmp_path / "child.txt"
    code = f"""
import os
from autograder.grading import guard
guard.install()
student = '''
import os, torch
from torch.utils.data import DataLoader, TensorDataset
def use_loader():
    loader = DataLoader(TensorDataset(torch.arange(20.)), batch_size=4, num_workers=2)
    return sum(float(batch[0].sum()) for batch in loader)
def fork():
    pid = os.fork()
    if pid == 0:
        open({str(marker)!r}, "w").write("the copy ran")
        return "copy"
    os.waitpid(pid, 0)
    return "original"
'''
grader = '''
def call(function):
    print("grader code got", function(), flush=True)
'''
notebook, checks = {{}}, {{}}
exec(compile(student, "<ch02.ipynb cell 8: ch02.simple_tokenizer>", "exec"), notebook)
exec(compile(grader, guard.GRADER_DIR + "/checks/test_ch02.py", "exec"), checks)
checks["call"](notebook["use_loader"])
checks["call"](notebook["fork"])
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["grader code got 190.0", "grader code got original"], done.stderr
    assert marker.read_text() == "the copy ran"


# Looks through every readable .py file on sys.path and under the course for code that defines
# the exercises' names: whole files, and every string constant, run until one defines them.
STEAL = """\
import ast, os, sys
_names = {names!r}
_stolen = {{}}
def _take(code):
    scope = {{"__name__": "stolen"}}
    try:
        exec(code, scope)
    except BaseException:
        return
    _stolen.update({{n: scope[n] for n in _names if n in scope and n not in _stolen}})
for _top in [p for p in sys.path if p and os.path.isdir(p)] + [os.getcwd(), {root!r}]:
    for _dir, _subdirs, _files in os.walk(_top):
        for _file in _files:
            if not _file.endswith(".py"):
                continue
            try:
                _text = open(os.path.join(_dir, _file), encoding="utf-8").read()
            except (OSError, UnicodeDecodeError):
                continue
            if not any(f"class {{n}}(" in _text or f"def {{n}}(" in _text for n in _names):
                continue
            _take(_text)
            try:
                _constants = [c.value for c in ast.walk(ast.parse(_text)) if isinstance(c, ast.Constant)]
            except SyntaxError:
                continue
            for _value in _constants:
                if isinstance(_value, str) and any(f"class {{n}}(" in _value or f"def {{n}}(" in _value for n in _names):
                    _take(_value)
globals().update(_stolen)
"""


def chapter_with_cells(chapter_id: str, first: str) -> dict:
    """The chapter's stub notebook with its first exercise cell replaced by `first` and the others by `pass`."""
    chapter = manifest.load().chapter(chapter_id)
    notebook = loader.read_notebook(paths.student_notebook(chapter_id))
    for index, exercise in enumerate(chapter.exercises):
        notebook["cells"] = loader.with_cell_source(
            notebook["cells"], chapter, exercise.id, first if index == 0 else "pass\n"
        )
    return notebook


@pytest.mark.skipif(not NAMESPACES, reason="files are hidden only inside the sandbox's namespaces")
@pytest.mark.xdist_group("grade_steal")
def test_code_found_anywhere_a_submission_can_read_scores_no_more_than_an_empty_cell(tmp_path):
    """Every chapter: a cell that runs whatever code defining the exercises' names it finds in the
    course, the packages it can import and its folder scores what cells left empty score, nothing."""
    course = manifest.load()
    chapters = [ch for ch in course.chapters if paths.solution_notebook(ch.id).exists()]
    # Two submissions share the chapters, so that both grading workers have a half to do.
    student_of = {chapter.id: f"steals{index % 2}" for index, chapter in enumerate(chapters)}
    for chapter in chapters:
        names = sorted({name for exercise in chapter.exercises for name in exercise.names})
        path = tmp_path / "class" / student_of[chapter.id] / chapter.id / f"{chapter.id}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        steal = STEAL.format(names=names, root=str(paths.course_root()))
        path.write_text(json.dumps(chapter_with_cells(chapter.id, steal)), encoding="utf-8")
    done = course_grade(
        tmp_path / "class", "--out", tmp_path / "out", "--seed", SEED, "--workers", 2, "--no-mistake-names", timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    book = gradebook(tmp_path / "out")
    # Cells left empty score nothing (the self-test grades the stubs), so neither may these.
    assert {ch.id: float(book[student_of[ch.id]][ch.id]) for ch in chapters} == {ch.id: 0.0 for ch in chapters}
