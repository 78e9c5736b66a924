"""The code stays formatted and lint-free, as pyproject.toml configures ruff."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from autograder import paths


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_finds_nothing_to_change(command):
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e . installs it)")
    done = subprocess.run([ruff, *command, "."], cwd=paths.course_root(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
