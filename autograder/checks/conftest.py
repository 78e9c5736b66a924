"""Fixtures shared by every chapter's checks.

Under `course check` the runner's `SubmissionPlugin` serves the submission. Run
directly (`pytest autograder/checks/test_ch02.py -m ch02_gpt_dataset`), the
checks load `--notebook`, or the chapter's notebook in `chapters/`.
"""
from __future__ import annotations

import contextlib
import re
import zlib
from functools import lru_cache
from pathlib import Path

import pytest

from autograder import loader, manifest, paths
from autograder.checks.gpt2_tokens import byte_level_stand_in
from autograder.runner import SubmissionPlugin


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="the notebook to check (default: chapters/chNN/chNN.ipynb)")
    parser.addoption("--seed", type=int, default=0, help="seed for the random inputs of hidden checks")


def pytest_configure(config):
    course = manifest.load()
    config.addinivalue_line("markers", "forbid(*dotted_names): calls the exercise must not make (written from scratch)")
    for ex in course.exercises():
        config.addinivalue_line("markers", f"{ex.marker}: checks of exercise {ex.id} ({ex.title})")
    if find_plugin(config) is None:
        config.pluginmanager.register(_StandalonePlugin(config, course))


class _StandalonePlugin(SubmissionPlugin):
    """Loads notebooks itself when the checks run under plain pytest."""

    def __init__(self, config, course):
        super().__init__(course, {}, seed=config.getoption("--seed"))
        self.notebook = config.getoption("--notebook")

    def submission(self, chapter_id: str) -> loader.Submission:
        if chapter_id not in self.submissions:
            path = Path(self.notebook) if self.notebook else paths.student_notebook(chapter_id)
            self.submissions[chapter_id] = loader.load_notebook(path, self.course.chapter(chapter_id))
        return self.submissions[chapter_id]


def find_plugin(config) -> SubmissionPlugin | None:
    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, SubmissionPlugin)), None)


def _plugin(request) -> SubmissionPlugin:
    return find_plugin(request.config)


def _chapter_id(request) -> str:
    match = re.search(r"test_(ch\d\d)", request.module.__name__)
    assert match, f"check module {request.module.__name__} is not named test_chNN"
    return match.group(1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Checks run on tensors of a few hundred numbers: a second thread only adds waiting, which
    on a busy machine makes each tiny step up to a hundred times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def sub(request) -> loader.Submission:
    """The submission under test (a namespace: `sub.GPTDatasetV1`)."""
    plugin, chapter_id = _plugin(request), _chapter_id(request)
    if isinstance(plugin, _StandalonePlugin):
        return plugin.submission(chapter_id)
    return plugin.submissions[chapter_id]


@pytest.fixture(autouse=True)
def _exercise_available(request, sub):
    """Every check first requires its exercise's cell to have loaded and its names to exist."""
    exercise = _plugin(request).exercise_of(request.node)
    if exercise is not None:
        sub.require(exercise)


@pytest.fixture
def ref(request) -> loader.Submission:
    """The reference solution (hidden checks only; needs solutions/). None where the checks
    only produce outputs (`split`): there the grader holds the reference, not this process."""
    plugin, chapter_id = _plugin(request), _chapter_id(request)
    if plugin.cases is not None:
        return None
    if chapter_id not in plugin.reference:
        path = paths.solution_notebook(chapter_id)
        if not path.exists():
            pytest.skip(f"the reference notebook {path} is not here")
        plugin.reference[chapter_id] = loader.load_notebook(path, plugin.course.chapter(chapter_id))
    return plugin.reference[chapter_id]


@pytest.fixture
def seed(request) -> int:
    """A per-check seed derived from the run's seed, so a regrade draws the same inputs."""
    return check_seed(_plugin(request).seed, request.node.name)


def check_seed(run_seed: int, check_name: str) -> int:
    return (run_seed * 1_000_003 + zlib.crc32(check_name.encode())) % 2**31


@lru_cache(maxsize=None)
def _recorded(chapter_id: str) -> dict:
    import torch

    path = paths.fixtures_dir() / f"{chapter_id}.pt"
    return torch.load(path, weights_only=True)


@pytest.fixture
def recorded(request) -> dict:
    """The chapter's recorded fixtures (inputs and expected outputs made from solutions/)."""
    return _recorded(_chapter_id(request))


@pytest.fixture(scope="session")
def gpt2_files():
    """Paths of GPT-2's encoder.json and vocab.bpe; the check is skipped when they are not fetched."""
    from autograder.data import data_dir, is_available

    if not is_available("gpt2-bpe"):
        pytest.skip("needs the GPT-2 tokenizer files: run `course data fetch gpt2-bpe`")
    return data_dir() / "gpt2-encoder.json", data_dir() / "gpt2-vocab.bpe"


@pytest.fixture(scope="session")
def gpt2():
    """tiktoken's GPT-2 encoding: `gpt2_for_checks`."""
    with gpt2_for_checks() as encoding:
        yield encoding


@contextlib.contextmanager
def gpt2_for_checks():
    """tiktoken's GPT-2 encoding, built offline from the fetched files.

    Before the files are fetched, a byte-level stand-in (GPT-2's pre-tokenizer and
    <|endoftext|>, no merges) is served, and tiktoken returns it for "gpt2" while
    the checks run, so code built on the encoding (windows, batches, shuffling) is
    still checked; the checks that need GPT-2's real ids ask for `gpt2_files` too.
    """
    from autograder.data import gpt2_encoding, is_available

    if is_available("gpt2-bpe"):
        yield gpt2_encoding()
        return
    # tiktoken's registry serves cached encodings first, for get_encoding and encoding_for_model alike.
    from tiktoken import registry

    stand_in = byte_level_stand_in()
    registry.ENCODINGS["gpt2"] = stand_in
    try:
        yield stand_in
    finally:
        if registry.ENCODINGS.get("gpt2") is stand_in:
            del registry.ENCODINGS["gpt2"]
