"""Chapter 11's instructor-only material."""
