"""Chapter 10's instructor-only material."""
