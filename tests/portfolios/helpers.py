"""Checks any test that moves money can call: the books balance, balance rows match postings, nothing negative."""
from decimal import Decimal

from portfolios.selectors import books_balance, client_balances_negative, ledger_reconcile


def assert_books_balanced() -> None:
    """Every asset's postings sum to zero, every maintained balance (and position) agrees with the postings,
    and no client account is below zero."""
    unbalanced = {asset: total for asset, total in books_balance().items() if total != Decimal("0")}
    assert unbalanced == {}, f"the books do not balance: {unbalanced}"
    drifts = [drift.as_dict() for drift in ledger_reconcile()]
    assert drifts == [], f"balances drift from their postings: {drifts}"
    negative = client_balances_negative()
    assert negative == [], f"client balances below zero: {negative}"
