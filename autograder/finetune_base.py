"""Moved to `llmcourse.finetune_base`. This name stays for the 2026.11 term only, so that notebooks released
before the move (`from autograder.finetune_base import ...`) still run and grade; remove it after that term."""

from llmcourse.finetune_base import *  # noqa: F403
