"""Orders: instruments, order placement with pre-trade checks, modify, cancel and the trading saga."""
