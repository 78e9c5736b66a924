"""Chapter 8's instructor-only material."""
