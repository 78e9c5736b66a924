"""Chapter 6's instructor-only material."""
