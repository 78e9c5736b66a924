"""Chapter 4's instructor-only material."""
