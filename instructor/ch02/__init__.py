"""Chapter 2's instructor-only material."""
