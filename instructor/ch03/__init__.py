"""Chapter 3's instructor-only material."""
