"""Models of the matching context."""
