"""Chapter 12's instructor-only material."""
