"""Moved to `llmcourse.pretrained_llama`. This name stays for the 2026.11 term only, so that notebooks released
before the move (`from autograder.pretrained_llama import ...`) still run and grade; remove it after that term."""

from llmcourse.pretrained_llama import *  # noqa: F403
