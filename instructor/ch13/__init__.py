"""Chapter 13's instructor-only material."""
