"""Alpaca Trading API v2-compatible surface (REST under /v2/, the trade_updates stream at /stream)."""
