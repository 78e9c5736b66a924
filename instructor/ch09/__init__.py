"""Chapter 9's instructor-only material."""
