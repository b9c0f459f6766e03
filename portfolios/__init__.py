"""Portfolios: the double-entry ledger, balances, deposits, withdrawals, positions and P&L."""
