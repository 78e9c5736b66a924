"""The template chapter's instructor-only material."""
