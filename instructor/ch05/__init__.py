"""Chapter 5's instructor-only material."""
