"""Moved to `llmcourse.data`. This name stays for the 2026.11 term only, so that notebooks released
before the move (`from autograder.data import ...`) still run and grade; remove it after that term."""

from llmcourse.data import *  # noqa: F403
