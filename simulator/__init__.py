"""The market simulator: reference prices as a random walk, and bots that quote and trade through the order services."""
