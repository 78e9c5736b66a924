"""Chapter 14's instructor-only material."""
