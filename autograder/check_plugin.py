"""The pytest plugin through which every check gets its submission: options, markers and fixtures.

Under `course check` the runner's `SubmissionPlugin` serves the submission. Run
directly (`pytest autograder/checks/test_ch02.py -m ch02_gpt_dataset`), the
checks load `--notebook`, or the chapter's notebook in `chapters/`
(`runner.StandalonePlugin`).
"""

from __future__ import annotations

import re

import pytest

from autograder import loader, manifest, mistakes, paths, recording, runner
from autograder.gpt2_for_checks import gpt2_for_checks
from autograder.split import check_id, check_seed


def pytest_addoption(parser):
    parser.addoption("--notebook", default=None, help="the notebook to check (default: chapters/chNN/chNN.ipynb)")
    parser.addoption("--seed", type=int, default=0, help="seed for the random inputs of hidden checks")


def register_markers(config, course: manifest.Course) -> None:
    """The markers the checks use: one per exercise, and `forbid`."""
    config.addinivalue_line("markers", "forbid(*dotted_names): calls the exercise must not make (written from scratch)")
    for ex in course.exercises():
        config.addinivalue_line("markers", f"{ex.marker}: checks of exercise {ex.id} ({ex.title})")


def pytest_configure(config):
    course = manifest.load()
    register_markers(config, course)
    if runner.find_plugin(config) is None:
        config.pluginmanager.register(
            runner.StandalonePlugin(course, config.getoption("--notebook"), config.getoption("--seed"))
        )


def _plugin(request) -> runner.SubmissionPlugin:
    return runner.find_plugin(request.config)


def _chapter_id(request) -> str:
    match = re.search(r"ch\d\d", request.module.__name__)
    assert match, f"check module {request.module.__name__} names no chapter (chNN)"
    return match.group(0)


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
def sub(request) -> loader.LoadedNotebook:
    """The submission under test (a namespace: `sub.GPTDatasetV1`)."""
    return _plugin(request).submission(_chapter_id(request))


@pytest.fixture(autouse=True)
def _exercise_available(request, sub):
    """Every check first requires its exercise's cell to have loaded and its names to exist."""
    exercise = _plugin(request).exercise_of(request.node)
    if exercise is not None:
        sub.require(exercise)


@pytest.fixture
def produce_only(request):
    """Where the grader decides split checks: the runner's step that runs a split check's
    produce step alone and keeps its outputs; else None (all three steps run here)."""
    plugin = _plugin(request)
    return plugin.produce_for if plugin.cases is not None else None


@pytest.fixture
def explain_failure(request):
    """`(failure, outputs) -> failure` naming the catalogued mistake whose outputs on this check match
    (`autograder.mistakes`)."""
    key = check_id(request.node.module.__name__, request.node.name)
    plugin = _plugin(request)
    exercise = plugin.exercise_of(request.node)
    seed = plugin.seed if mistakes.hidden_checks_diagnosed() else None
    return lambda failure, outputs: mistakes.explained(failure, key, outputs, exercise and exercise.id, seed)


@pytest.fixture
def ref(request) -> loader.LoadedNotebook:
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


@pytest.fixture
def recorded(request) -> dict:
    """The chapter's recorded inputs and expected outputs (made from solutions/ by `course fixtures`)."""
    return recording.read(_chapter_id(request))


@pytest.fixture(scope="session")
def gpt2_files():
    """Paths of GPT-2's encoder.json and vocab.bpe; the check is skipped when they are not fetched."""
    from llmcourse.data import data_dir, is_available

    if not is_available("gpt2-bpe"):
        pytest.skip("needs the GPT-2 tokenizer files: run `course data fetch gpt2-bpe`")
    return data_dir() / "gpt2-encoder.json", data_dir() / "gpt2-vocab.bpe"


@pytest.fixture(scope="session")
def gpt2():
    """tiktoken's GPT-2 encoding: `gpt2_for_checks`."""
    with gpt2_for_checks() as encoding:
        yield encoding
