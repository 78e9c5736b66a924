"""Chapter 1's instructor-only material."""
