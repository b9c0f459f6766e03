"""Matching: the order-book core, outbox-driven matching workers, trades and market data."""
