"""Moved to `llmcourse.judge`. This name stays for the 2026.11 term only, so that notebooks released
before the move (`from autograder.judge import ...`) still run and grade; remove it after that term."""

from llmcourse.judge import *  # noqa: F403
