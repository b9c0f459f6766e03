"""Typed errors of the portfolios services; the API turns them into 4xx answers."""
from decimal import Decimal


class LedgerError(Exception):
    code = "ledger_error"

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidAmount(LedgerError):
    code = "invalid_amount"


class UnbalancedEntry(LedgerError):
    code = "unbalanced_entry"


class InsufficientFunds(LedgerError):
    """The account would go below zero: not enough available cash or shares."""

    code = "insufficient_funds"

    def __init__(self, *, account_id: int, kind: str, asset: str, available: Decimal, requested: Decimal):
        super().__init__(
            f"Not enough {asset} in {kind}: {available} available, {requested} requested.",
            account_id=account_id, kind=kind, asset=asset, available=str(available), requested=str(requested),
        )


class LimitExceeded(LedgerError):
    code = "limit_exceeded"


class InvalidState(LedgerError):
    code = "invalid_state"


class FourEyesRefused(LedgerError):
    """The member of staff deciding a request is the one who made it (or whose money it is)."""

    code = "four_eyes"
