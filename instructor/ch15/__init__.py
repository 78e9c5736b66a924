"""Chapter 15's instructor-only material."""
