"""Row locks of the portfolios context, in one global order: a request being decided (adjustment request, withdrawal)
before the ledger accounts it posts to, then positions, each by primary key."""
from collections.abc import Iterable

from .models import AdjustmentRequest, Deposit, LedgerAccount, Position, Withdrawal


def ledger_accounts_lock(account_ids: Iterable[int]) -> dict[int, LedgerAccount]:
    """Lock the client ledger accounts among `account_ids` (FOR NO KEY UPDATE, primary-key order).

    NO KEY: the lock the balance UPDATE takes anyway, compatible with the key-share locks of posting inserts
    (foreign-key checks) in other transactions. House accounts are skipped: their balance is not
    maintained, so no writer needs their row.
    """
    ids = sorted(set(account_ids))
    if not ids:
        return {}
    rows = (
        LedgerAccount.objects.select_for_update(no_key=True)
        .filter(id__in=ids, owner__isnull=False)
        .order_by("id")
        .only("id", "owner_id", "kind", "asset", "balance", "may_go_negative")
    )
    return {account.id: account for account in rows}


def positions_lock(user_ids: Iterable[int], symbol: str) -> dict[int, Position]:
    """Lock (creating when missing) the positions of `user_ids` in `symbol`, in primary-key order."""
    ids = sorted(set(user_ids))
    Position.objects.bulk_create(
        [Position(user_id=user_id, symbol=symbol) for user_id in ids], ignore_conflicts=True
    )
    rows = Position.objects.select_for_update().filter(user_id__in=ids, symbol=symbol).order_by("id")
    return {position.user_id: position for position in rows}


def deposit_lock(deposit_id: int) -> Deposit:
    return Deposit.objects.select_for_update().get(pk=deposit_id)


def withdrawal_lock(withdrawal_id: int) -> Withdrawal:
    """The withdrawal row, locked: the review decisions on it run one at a time (FOR UPDATE)."""
    return Withdrawal.objects.select_for_update().get(pk=withdrawal_id)


def adjustment_request_lock(request_id: int) -> AdjustmentRequest:
    """The request row, locked: two approvals of one request run one after the other, the second sees it decided."""
    return AdjustmentRequest.objects.select_for_update().get(pk=request_id)
