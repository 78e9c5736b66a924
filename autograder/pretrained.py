"""Moved to `llmcourse.pretrained`. This name stays for the 2026.11 term only, so that notebooks released
before the move (`from autograder.pretrained import ...`) still run and grade; remove it after that term."""

from llmcourse.pretrained import *  # noqa: F403
