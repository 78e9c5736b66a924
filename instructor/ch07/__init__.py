"""Chapter 7's instructor-only material."""
