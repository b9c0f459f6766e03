"""Models of the portfolios context."""
