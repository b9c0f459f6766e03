"""HTTP API of the portfolios context: deposits, withdrawals, portfolio and activities."""
