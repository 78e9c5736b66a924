"""Test-session set-up: data files come from the shared data folder beside the course, when there is one.

Nothing is downloaded: the shared folder serves as a `file://` mirror, and tests
that need data skip when neither it nor fetched files are here.
"""

from __future__ import annotations

import os

import pytest

from autograder import manifest, paths
from autograder.check_plugin import register_markers
from llmcourse import data

SHARED_DATA = paths.course_root().parent / "shared" / "data"
# A chapter laid out for copying (test_contributing), not tests of this course.
collect_ignore = ["chapter_template"]


def pytest_configure(config):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    # Tests import the check modules, whose markers the check plugin registers where checks run.
    register_markers(config, manifest.load())
    if hasattr(config, "workerinput"):
        return  # a pytest-xdist worker: the controlling process fetched the data before starting it
    missing = [f.name for f in data.resolve(None) if not data.is_available(f.name) and (SHARED_DATA / f.name).is_file()]
    if missing:
        data.fetch(missing, mirror=SHARED_DATA.as_uri(), progress=False)
        data.configure_tiktoken_cache()


# The tests run in parallel processes (pytest-xdist, `-n auto` in pyproject.toml). A module's tests
# share its module-scoped fixtures (a graded class, a release, a downloaded package), so they stay
# in one process; the tests of these modules are independent of each other and spread out, and so
# is a test with an xdist_group of its own (a long one that needs no module fixture).
SPREAD_MODULES = {"test_selftest", "test_notebooks_run", "test_nbgrader_autograde"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rpartition(".")[2]
        if module not in SPREAD_MODULES and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(module))


@pytest.fixture
def needs_gpt2_files():
    if not data.is_available("gpt2-bpe"):
        pytest.skip("needs the GPT-2 tokenizer files (course data fetch gpt2-bpe, or ../shared/data)")
