"""Models of the orders context."""
