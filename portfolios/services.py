"""Writes of the portfolios context: ledger postings, reservations, trades, deposits, withdrawals, adjustments.

Money the back office moves by hand goes through four eyes: an adjustment request, or a withdrawal above the
approval threshold, is decided by another person than the one who asked (ADR 010).

Every service is one `transaction.atomic()` block, so a caller may nest it in its own transaction (the
order placement, the matching worker's batch). Amounts are `Decimal` with at most 4 decimal places.
Postgres enforces the invariants (see portfolios/migrations/0002_ledger_invariants.py); the checks here
only turn a violation into a typed error before anything is written.

Reads live in `portfolios.selectors`; the ones other contexts use are re-exported here for convenience.
"""
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from accounts.services import staff_audit_record
from brokerx.enqueue import task_enqueue
from outbox.services import outbox_emit

from .errors import FourEyesRefused, InsufficientFunds, InvalidAmount, InvalidState, LimitExceeded, UnbalancedEntry
from .gateway import payment_gateway, simulated_outcome
from .locks import adjustment_request_lock, deposit_lock, ledger_accounts_lock, positions_lock, withdrawal_lock
from .models import (
    AMOUNT_QUANTUM,
    ZERO,
    AdjustmentRequest,
    Deposit,
    JournalEntry,
    LedgerAccount,
    Position,
    Withdrawal,
)
from .selectors import (  # noqa: F401  (re-exported: the portfolios API in one place)
    balances_for_user,
    books_balance,
    ledger_reconcile,
    portfolio_for_user,
)

Kind = LedgerAccount.Kind
EntryKind = JournalEntry.Kind
COST_QUANTUM = Decimal("0.00000001")
# The settlement task (portfolios.tasks), enqueued by name: the tasks module imports these services.
DEPOSIT_SETTLE_TASK = "portfolios.deposit_settle"


def ledger_currency() -> str:
    return getattr(settings, "LEDGER_CURRENCY", "USD")


def _amount(value: Decimal | int, *, what: str = "amount", positive: bool = True) -> Decimal:
    """A ledger amount: a finite Decimal (or int) with at most 4 decimal places; floats are refused."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise InvalidAmount(f"{what} must be a Decimal, not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise InvalidAmount(f"{what} must be finite")
    try:
        quantized = value.quantize(AMOUNT_QUANTUM)
    except InvalidOperation as exc:
        raise InvalidAmount(f"{what} is too large") from exc
    if quantized != value:
        raise InvalidAmount(f"{what} has more than 4 decimal places", value=str(value))
    if positive and quantized <= 0:
        raise InvalidAmount(f"{what} must be positive", value=str(value))
    return quantized


# --- accounts ------------------------------------------------------------------------------------

def accounts_open(*, owner_id: int | None, kinds: Iterable[str], asset: str) -> None:
    """Open ledger accounts idempotently (SQL function portfolios_accounts_open: INSERT ... ON CONFLICT DO NOTHING)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT portfolios_accounts_open(%s, %s, %s)", [owner_id, [str(k) for k in kinds], asset])


def cash_accounts_open(*, user, currency: str | None = None) -> dict[str, LedgerAccount]:
    """The client's cash accounts (available, reserved, pending), opened on first use."""
    return _accounts(owner_id=user.pk, kinds=LedgerAccount.CLIENT_CASH_KINDS, asset=currency or ledger_currency())


def securities_accounts_open(*, user, symbol: str) -> dict[str, LedgerAccount]:
    """The client's securities accounts of one symbol (available, reserved), opened on first use."""
    return _accounts(owner_id=user.pk, kinds=LedgerAccount.CLIENT_SECURITIES_KINDS, asset=symbol)


def house_account(*, kind: str, asset: str) -> LedgerAccount:
    return _accounts(owner_id=None, kinds=[kind], asset=asset)[kind]


def _accounts(
    *, owner_id: int | None, kinds: Sequence[str], asset: str, lock: bool = False
) -> dict[str, LedgerAccount]:
    """The accounts of one owner and asset by kind, opened when missing; `lock`: FOR NO KEY UPDATE, pk order."""
    owner = Q(owner_id=owner_id) if owner_id is not None else Q(owner__isnull=True)
    query = LedgerAccount.objects.filter(owner, kind__in=kinds, asset=asset).only(
        "id", "owner_id", "kind", "asset", "balance", "may_go_negative"
    )
    if lock:
        query = query.select_for_update(no_key=True).order_by("id")
    found = {account.kind: account for account in query}
    if len(found) < len(set(kinds)):
        accounts_open(owner_id=owner_id, kinds=kinds, asset=asset)
        found = {account.kind: account for account in query.all()}
    return found


# --- the ledger ----------------------------------------------------------------------------------

def ledger_post(
    *,
    kind: str,
    reference: str,
    memo: str = "",
    postings: list[tuple[LedgerAccount | int, Decimal]],
    created_by=None,
) -> JournalEntry:
    """Post one balanced journal entry.

    Postings to the same account are netted. The client accounts are locked in primary-key order, the
    entry must sum to zero per asset and no client account may go below zero (typed errors
    UnbalancedEntry / InsufficientFunds); then the entry and its postings are inserted, postings in
    account order, and the Postgres trigger moves the maintained balances.
    """
    legs: dict[int, Decimal] = {}
    known: dict[int, LedgerAccount] = {}
    for account, amount in postings:
        if isinstance(account, LedgerAccount):
            account_id = account.pk
            known[account_id] = account
        else:
            account_id = int(account)
        legs[account_id] = legs.get(account_id, ZERO) + _amount(amount, positive=False)

    with transaction.atomic():
        locked = ledger_accounts_lock(legs)
        missing = [account_id for account_id in legs if account_id not in locked and account_id not in known]
        if missing:
            known.update(LedgerAccount.objects.in_bulk(missing))
        return _post_locked(kind=kind, reference=reference, memo=memo, created_by=created_by, legs=legs,
                            accounts={**known, **locked})


_INSERT_ENTRY = """
    WITH entry AS (
        INSERT INTO portfolios_journalentry (kind, reference, memo, created_by_id, created_at)
        VALUES (%s, %s, %s, %s, %s) RETURNING id, txid
    ), legs AS (
        INSERT INTO portfolios_posting (entry_id, account_id, amount)
        SELECT entry.id, leg.account_id, leg.amount
          FROM entry, unnest(%s::bigint[], %s::numeric[]) WITH ORDINALITY AS leg(account_id, amount, n)
         ORDER BY leg.n
    )
    SELECT id, txid FROM entry
"""


def _post_locked(*, kind: str, reference: str, memo: str, created_by, legs: dict[int, Decimal],
                 accounts: dict[int, LedgerAccount]) -> JournalEntry:
    """Check and insert an entry whose client accounts the caller has locked (`accounts` hold fresh balances)."""
    legs = {account_id: amount for account_id, amount in legs.items() if amount != 0}
    if not legs:
        raise UnbalancedEntry("A journal entry needs at least one non-zero posting.", reference=reference)
    if len(accounts.keys() & legs.keys()) != len(legs):
        raise UnbalancedEntry("Unknown ledger account.", accounts=sorted(legs.keys() - accounts.keys()))
    totals: dict[str, Decimal] = {}
    for account_id, amount in legs.items():
        asset = accounts[account_id].asset
        totals[asset] = totals.get(asset, ZERO) + amount
    unbalanced = {asset: str(total) for asset, total in totals.items() if total != 0}
    if unbalanced:
        raise UnbalancedEntry("The postings do not sum to zero per asset.", totals=unbalanced, reference=reference)
    for account_id, amount in legs.items():
        account = accounts[account_id]
        if account.owner_id is not None and not account.may_go_negative and account.balance + amount < 0:
            raise InsufficientFunds(account_id=account_id, kind=account.kind, asset=account.asset,
                                    available=account.balance, requested=-amount)

    # Entry and postings in one statement (one round trip); postings in account order.
    entry = JournalEntry(kind=kind, reference=reference, memo=memo, created_by=created_by, created_at=timezone.now())
    ordered = sorted(legs)
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_ENTRY, [kind, reference, memo, getattr(created_by, "pk", None), entry.created_at,
                                       ordered, [legs[account_id] for account_id in ordered]])
        entry.pk, entry.txid = cursor.fetchone()
    entry._state.adding = False
    return entry


def _transfer(*, user, asset: str, source: str, target: str, amount: Decimal, kind: str,
              reference: str) -> JournalEntry:
    """Move `amount` between two of one client's accounts: lock both (primary-key order), check, post."""
    with transaction.atomic():
        accounts = _accounts(owner_id=user.pk, kinds=[source, target], asset=asset, lock=True)
        return _post_locked(kind=kind, reference=reference, memo="", created_by=None,
                            legs={accounts[source].pk: -amount, accounts[target].pk: amount},
                            accounts={account.pk: account for account in accounts.values()})


# --- reservations (called by the orders context) ---------------------------------------------------

def cash_reserve(*, user, amount: Decimal, reference: str) -> JournalEntry:
    """Move `amount` of the user's available cash to reserved (for an open buy order)."""
    return _transfer(user=user, asset=ledger_currency(), source=Kind.CASH_AVAILABLE, target=Kind.CASH_RESERVED,
                     amount=_amount(amount), kind=EntryKind.CASH_RESERVE, reference=reference)


def cash_release(*, user, amount: Decimal, reference: str) -> JournalEntry:
    """Move `amount` of the user's reserved cash back to available (cancel, expiry, price improvement)."""
    return _transfer(user=user, asset=ledger_currency(), source=Kind.CASH_RESERVED, target=Kind.CASH_AVAILABLE,
                     amount=_amount(amount), kind=EntryKind.CASH_RELEASE, reference=reference)


def shares_reserve(*, user, symbol: str, qty: Decimal, reference: str) -> JournalEntry:
    """Move `qty` of the user's available shares of `symbol` to reserved (for an open sell order)."""
    return _transfer(user=user, asset=symbol, source=Kind.SECURITIES_AVAILABLE, target=Kind.SECURITIES_RESERVED,
                     amount=_amount(qty, what="qty"), kind=EntryKind.SHARES_RESERVE, reference=reference)


def shares_release(*, user, symbol: str, qty: Decimal, reference: str) -> JournalEntry:
    """Move `qty` of the user's reserved shares of `symbol` back to available."""
    return _transfer(user=user, asset=symbol, source=Kind.SECURITIES_RESERVED, target=Kind.SECURITIES_AVAILABLE,
                     amount=_amount(qty, what="qty"), kind=EntryKind.SHARES_RELEASE, reference=reference)


def trade_notional(*, qty: Decimal, price: Decimal) -> Decimal:
    """qty x price rounded (half-even) to the ledger's 4 decimal places; both sides use the same figure."""
    return (qty * price).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)


def trade_settle(
    *,
    buyer,
    seller,
    symbol: str,
    qty: Decimal,
    price: Decimal,
    buyer_fee: Decimal,
    seller_fee: Decimal,
    reference: str,
    buyer_cash_from_reserved: Decimal | None = None,
) -> JournalEntry:
    """Settle one fill: the buyer's reserved cash pays the seller, the seller's reserved shares go to the buyer.

    The buyer pays notional + buyer_fee, taken from reserved cash. `buyer_cash_from_reserved`, when given,
    is how much to take from reserved instead: a surplus goes back to the buyer's available cash in the
    same entry, a shortfall is taken from available cash. (A caller whose reservation was made at a
    higher limit price may also leave it reserved and call cash_release itself.) The seller receives
    notional - seller_fee in available cash; both fees go to the house fees account. Positions follow:
    a buy adds to the cost basis (fee included), a sell realizes P&L against the average cost (fee deducted).
    """
    qty = _amount(qty, what="qty")
    price = _amount(price, what="price")
    buyer_fee = _amount(buyer_fee, what="buyer_fee", positive=False)
    seller_fee = _amount(seller_fee, what="seller_fee", positive=False)
    if buyer_fee < 0 or seller_fee < 0:
        raise InvalidAmount("Fees cannot be negative.")
    notional = trade_notional(qty=qty, price=price)
    buyer_cost = notional + buyer_fee
    from_reserved = buyer_cost if buyer_cash_from_reserved is None else _amount(
        buyer_cash_from_reserved, what="buyer_cash_from_reserved", positive=False)
    if from_reserved < 0:
        raise InvalidAmount("buyer_cash_from_reserved cannot be negative.")
    currency = ledger_currency()

    with transaction.atomic():
        buyer_cash = cash_accounts_open(user=buyer)
        seller_cash = buyer_cash if seller.pk == buyer.pk else cash_accounts_open(user=seller)
        buyer_shares = securities_accounts_open(user=buyer, symbol=symbol)
        seller_shares = buyer_shares if seller.pk == buyer.pk else securities_accounts_open(user=seller, symbol=symbol)
        postings = [
            (buyer_cash[Kind.CASH_RESERVED], -from_reserved),
            (buyer_cash[Kind.CASH_AVAILABLE], from_reserved - buyer_cost),
            (seller_cash[Kind.CASH_AVAILABLE], notional - seller_fee),
            (seller_shares[Kind.SECURITIES_RESERVED], -qty),
            (buyer_shares[Kind.SECURITIES_AVAILABLE], qty),
        ]
        if buyer_fee + seller_fee:
            postings.append((house_account(kind=Kind.HOUSE_FEES, asset=currency), buyer_fee + seller_fee))
        entry = ledger_post(kind=EntryKind.TRADE, reference=reference,
                            memo=f"{symbol} {qty} @ {price}", postings=postings)

        positions = positions_lock([buyer.pk, seller.pk], symbol)
        _position_buy(positions[buyer.pk], qty=qty, cost=buyer_cost)
        _position_sell(positions[seller.pk], qty=qty, proceeds=notional - seller_fee)
    return entry


def _position_buy(position: Position, *, qty: Decimal, cost: Decimal) -> None:
    new_qty = position.qty + qty
    position.avg_cost = ((position.qty * position.avg_cost + cost) / new_qty).quantize(COST_QUANTUM)
    position.qty = new_qty
    position.save(update_fields=["qty", "avg_cost", "updated_at"])


def _position_sell(position: Position, *, qty: Decimal, proceeds: Decimal) -> None:
    position.realized_pnl += (proceeds - qty * position.avg_cost).quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)
    position.qty -= qty
    if position.qty == 0:
        position.avg_cost = ZERO
    position.save(update_fields=["qty", "avg_cost", "realized_pnl", "updated_at"])


# --- deposits and withdrawals --------------------------------------------------------------------

def _day_start() -> dt.datetime:
    return timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)


def deposit_create(*, user, amount: Decimal, simulate: str | None = None) -> Deposit:
    """Start a deposit: the cash is posted to the client's pending account until the provider settles it.

    Pending cash is not buying power. Settlement runs in `portfolios.tasks.deposit_settle_task` after the
    provider's delay, enqueued once this transaction commits.
    """
    amount = _amount(amount)
    if amount < settings.DEPOSIT_MIN_AMOUNT or amount > settings.DEPOSIT_MAX_AMOUNT:
        raise LimitExceeded(
            f"A deposit must be between {settings.DEPOSIT_MIN_AMOUNT} and {settings.DEPOSIT_MAX_AMOUNT}.",
            min=str(settings.DEPOSIT_MIN_AMOUNT), max=str(settings.DEPOSIT_MAX_AMOUNT))
    if simulate not in (None, "", *Deposit.Simulate.values):
        raise InvalidState(f"Unknown simulate value {simulate!r}.")
    currency = ledger_currency()
    gateway = payment_gateway()

    with transaction.atomic():
        cash = cash_accounts_open(user=user)
        # The pending account's lock serializes this client's deposits, so the daily total is exact.
        ledger_accounts_lock([cash[Kind.CASH_PENDING].pk])
        today = Deposit.objects.filter(
            user=user, created_at__gte=_day_start(), status__in=[Deposit.Status.PENDING, Deposit.Status.SETTLED]
        ).aggregate(total=Sum("amount"))["total"] or ZERO
        if today + amount > settings.DEPOSIT_DAILY_LIMIT:
            raise LimitExceeded(
                f"Deposits are limited to {settings.DEPOSIT_DAILY_LIMIT} a day; {today} deposited today.",
                daily_limit=str(settings.DEPOSIT_DAILY_LIMIT), deposited_today=str(today))
        outcome = simulated_outcome(amount=amount, simulate=simulate)
        deposit = Deposit.objects.create(user=user, amount=amount, currency=currency, provider=gateway.name,
                                         simulate=outcome)
        deposit.provider_ref = gateway.deposit_initiate(deposit_id=deposit.pk, amount=amount, currency=currency,
                                                        simulate=outcome)
        deposit.save(update_fields=["provider_ref"])
        ledger_post(kind=EntryKind.DEPOSIT, reference=deposit.reference, postings=[
            (house_account(kind=Kind.HOUSE_GATEWAY, asset=currency), -amount), (cash[Kind.CASH_PENDING], amount),
        ])
        transaction.on_commit(lambda: _enqueue_deposit_settle(deposit.pk))
    return deposit


def _enqueue_deposit_settle(deposit_id: int) -> None:
    task_enqueue(DEPOSIT_SETTLE_TASK, args=(deposit_id,), countdown=settings.DEPOSIT_SETTLE_DELAY_SECONDS)


def deposit_settle(*, deposit_id: int) -> Deposit:
    """Move a pending deposit's cash to available. A deposit no longer pending is returned unchanged."""
    with transaction.atomic():
        deposit = deposit_lock(deposit_id)
        if deposit.status != Deposit.Status.PENDING:
            return deposit
        cash = cash_accounts_open(user=deposit.user)
        ledger_post(kind=EntryKind.DEPOSIT_SETTLE, reference=deposit.reference, postings=[
            (cash[Kind.CASH_PENDING], -deposit.amount), (cash[Kind.CASH_AVAILABLE], deposit.amount),
        ])
        deposit.status = Deposit.Status.SETTLED
        deposit.settled_at = timezone.now()
        deposit.save(update_fields=["status", "settled_at"])
        _deposit_event(deposit, topic="deposit.settled")
    return deposit


def deposit_fail(*, deposit_id: int, reason: str = "Declined by the payment provider.") -> Deposit:
    """Reverse a pending deposit (the provider declined it). A deposit no longer pending is returned unchanged."""
    with transaction.atomic():
        deposit = deposit_lock(deposit_id)
        if deposit.status != Deposit.Status.PENDING:
            return deposit
        cash = cash_accounts_open(user=deposit.user)
        ledger_post(kind=EntryKind.DEPOSIT_FAIL, reference=deposit.reference, memo=reason, postings=[
            (cash[Kind.CASH_PENDING], -deposit.amount),
            (house_account(kind=Kind.HOUSE_GATEWAY, asset=deposit.currency), deposit.amount),
        ])
        deposit.status = Deposit.Status.FAILED
        deposit.failed_at = timezone.now()
        deposit.failure_reason = reason[:200]
        deposit.save(update_fields=["status", "failed_at", "failure_reason"])
        _deposit_event(deposit, topic="deposit.failed", reason=deposit.failure_reason)
    return deposit


def _deposit_event(deposit: Deposit, *, topic: str, **extra) -> None:
    """Tell other contexts (notifications) how a deposit ended, in the transaction that ends it."""
    outbox_emit(topic=topic, payload={"user_id": deposit.user_id, "deposit_id": deposit.pk,
                                      "amount": str(deposit.amount), "currency": deposit.currency, **extra},
                aggregate_type="deposit", aggregate_id=deposit.pk)


def withdrawal_create(*, user, amount: Decimal) -> Withdrawal:
    """Pay cash out to the client, from available cash only (never reserved or pending).

    Above settings.WITHDRAWAL_APPROVAL_THRESHOLD nothing is paid yet: the cash moves to the client's held
    account (not buying power, cannot be withdrawn twice) and the withdrawal waits, `pending_review`, for
    `withdrawal_approve` or `withdrawal_reject` by another person.
    """
    amount = _amount(amount)
    if amount > settings.WITHDRAWAL_MAX_AMOUNT:
        raise LimitExceeded(f"A withdrawal cannot exceed {settings.WITHDRAWAL_MAX_AMOUNT}.",
                            max=str(settings.WITHDRAWAL_MAX_AMOUNT))
    currency = ledger_currency()
    gateway = payment_gateway()
    review = amount > settings.WITHDRAWAL_APPROVAL_THRESHOLD

    with transaction.atomic():
        cash = cash_accounts_open(user=user)
        available = ledger_accounts_lock([cash[Kind.CASH_AVAILABLE].pk])[cash[Kind.CASH_AVAILABLE].pk]
        if available.balance < amount:
            raise InsufficientFunds(account_id=available.pk, kind=available.kind, asset=currency,
                                    available=available.balance, requested=amount)
        today = Withdrawal.objects.filter(
            user=user, created_at__gte=_day_start(),
            status__in=[Withdrawal.Status.PENDING_REVIEW, Withdrawal.Status.COMPLETED],
        ).aggregate(total=Sum("amount"))["total"] or ZERO
        if today + amount > settings.WITHDRAWAL_DAILY_LIMIT:
            raise LimitExceeded(
                f"Withdrawals are limited to {settings.WITHDRAWAL_DAILY_LIMIT} a day; {today} withdrawn today.",
                daily_limit=str(settings.WITHDRAWAL_DAILY_LIMIT), withdrawn_today=str(today))
        withdrawal = Withdrawal.objects.create(
            user=user, amount=amount, currency=currency, provider=gateway.name,
            status=Withdrawal.Status.PENDING_REVIEW if review else Withdrawal.Status.COMPLETED)
        if review:
            held = _accounts(owner_id=user.pk, kinds=[Kind.CASH_HELD], asset=currency)[Kind.CASH_HELD]
            ledger_post(kind=EntryKind.WITHDRAWAL_HOLD, reference=withdrawal.reference,
                        postings=[(available, -amount), (held, amount)])
            staff_audit_record(actor=user, action="withdrawal_review_requested", obj=withdrawal, details={
                "client_id": user.pk, "amount": str(amount), "currency": currency,
                "threshold": str(settings.WITHDRAWAL_APPROVAL_THRESHOLD)})
            return withdrawal
        ledger_post(kind=EntryKind.WITHDRAWAL, reference=withdrawal.reference, postings=[
            (available, -amount), (house_account(kind=Kind.HOUSE_GATEWAY, asset=currency), amount),
        ])
        withdrawal.provider_ref = gateway.payout(withdrawal_id=withdrawal.pk, amount=amount, currency=currency)
        withdrawal.save(update_fields=["provider_ref"])
    return withdrawal


def _check_four_eyes(*, decider, requester_id: int, what: str) -> None:
    if decider.pk == requester_id:
        raise FourEyesRefused(f"{what} must be decided by another person than the one who asked for it.",
                              requester_id=requester_id)


def _check_pending(obj, pending: str, what: str) -> None:
    if obj.status != pending:
        raise InvalidState(f"{what} is {obj.status}, no longer {pending}.", status=obj.status)


def _reason(reason: str | None, *, required: bool) -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidState("A reason is required.")
    return reason


def withdrawal_approve(*, withdrawal_id: int, staff_user, reason: str = "", ip: str | None = None) -> Withdrawal:
    """Pay out a withdrawal under review from its hold. Decided once: a second approval is refused (InvalidState)."""
    reason = _reason(reason, required=False)
    gateway = payment_gateway()
    with transaction.atomic():
        withdrawal = withdrawal_lock(withdrawal_id)  # the request before the accounts it posts to
        _check_pending(withdrawal, Withdrawal.Status.PENDING_REVIEW, f"Withdrawal #{withdrawal_id}")
        _check_four_eyes(decider=staff_user, requester_id=withdrawal.user_id, what="A withdrawal")
        held = _accounts(owner_id=withdrawal.user_id, kinds=[Kind.CASH_HELD], asset=withdrawal.currency)
        ledger_post(kind=EntryKind.WITHDRAWAL, reference=withdrawal.reference, memo=reason, created_by=staff_user,
                    postings=[(held[Kind.CASH_HELD], -withdrawal.amount),
                              (house_account(kind=Kind.HOUSE_GATEWAY, asset=withdrawal.currency), withdrawal.amount)])
        withdrawal.provider_ref = gateway.payout(withdrawal_id=withdrawal.pk, amount=withdrawal.amount,
                                                 currency=withdrawal.currency)
        _withdrawal_decided(withdrawal, status=Withdrawal.Status.COMPLETED, staff_user=staff_user, reason=reason,
                            ip=ip, action="withdrawal_approved")
    return withdrawal


def withdrawal_reject(*, withdrawal_id: int, staff_user, reason: str, ip: str | None = None) -> Withdrawal:
    """Refuse a withdrawal under review: its hold goes back to the client's available cash, exactly."""
    reason = _reason(reason, required=True)
    with transaction.atomic():
        withdrawal = withdrawal_lock(withdrawal_id)
        _check_pending(withdrawal, Withdrawal.Status.PENDING_REVIEW, f"Withdrawal #{withdrawal_id}")
        _check_four_eyes(decider=staff_user, requester_id=withdrawal.user_id, what="A withdrawal")
        accounts = _accounts(owner_id=withdrawal.user_id, kinds=[Kind.CASH_AVAILABLE, Kind.CASH_HELD],
                             asset=withdrawal.currency)
        ledger_post(kind=EntryKind.WITHDRAWAL_RELEASE, reference=withdrawal.reference, memo=reason,
                    created_by=staff_user, postings=[(accounts[Kind.CASH_HELD], -withdrawal.amount),
                                                     (accounts[Kind.CASH_AVAILABLE], withdrawal.amount)])
        _withdrawal_decided(withdrawal, status=Withdrawal.Status.REJECTED, staff_user=staff_user, reason=reason,
                            ip=ip, action="withdrawal_rejected")
    return withdrawal


def _withdrawal_decided(withdrawal: Withdrawal, *, status: str, staff_user, reason: str, ip: str | None,
                        action: str) -> None:
    withdrawal.status = status
    withdrawal.reviewed_by = staff_user
    withdrawal.reviewed_at = timezone.now()
    withdrawal.review_reason = reason
    withdrawal.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_reason", "provider_ref"])
    staff_audit_record(actor=staff_user, action=action, obj=withdrawal, reason=reason, ip=ip, details={
        "client_id": withdrawal.user_id, "amount": str(withdrawal.amount), "currency": withdrawal.currency})


# --- back office ---------------------------------------------------------------------------------

ADJUSTABLE_KINDS = LedgerAccount.ADJUSTABLE_KINDS


def _adjustment_amount(*, kind: str, amount) -> Decimal:
    """The checked, signed amount of a manual adjustment (on request, and again when it is posted)."""
    if kind not in ADJUSTABLE_KINDS:
        raise InvalidState(f"Only {', '.join(ADJUSTABLE_KINDS)} can be adjusted.")
    amount = _amount(amount, positive=False)
    if amount == 0:
        raise InvalidAmount("An adjustment cannot be zero.")
    return amount


def adjustment_post(
    *,
    staff_user,
    user,
    kind: str,
    asset: str,
    amount: Decimal,
    reason: str,
    unit_cost: Decimal | None = None,
    ip: str | None = None,
    reference: str | None = None,
) -> JournalEntry:
    """A manual correction by staff: `amount` (signed) on the client's available cash or shares, against house clearing.

    The staff member and the reason are recorded on the journal entry and in the staff audit trail (same
    transaction). For shares, the position follows:
    a credit enters at `unit_cost` (default: the current average cost), a debit leaves at the average cost.

    The back office posts through `adjustment_request_approve` (four eyes); tests and demo seeding call this
    directly. `reference` defaults to `adjustment:<client id>`.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidState("A manual adjustment needs a reason.")
    amount = _adjustment_amount(kind=kind, amount=amount)

    with transaction.atomic():
        if kind == Kind.CASH_AVAILABLE:
            client = cash_accounts_open(user=user, currency=asset)[kind]
        else:
            client = securities_accounts_open(user=user, symbol=asset)[kind]
        entry = ledger_post(
            kind=EntryKind.ADJUSTMENT, reference=reference or f"adjustment:{user.pk}", memo=reason,
            created_by=staff_user,
            postings=[(client, amount), (house_account(kind=Kind.HOUSE_CLEARING, asset=asset), -amount)],
        )
        if kind == Kind.SECURITIES_AVAILABLE:
            position = positions_lock([user.pk], asset)[user.pk]
            if amount > 0:
                cost = position.avg_cost if unit_cost is None else _amount(unit_cost, what="unit_cost", positive=False)
                _position_buy(position, qty=amount, cost=(amount * cost).quantize(AMOUNT_QUANTUM))
            else:
                _position_sell(position, qty=-amount, proceeds=(-amount * position.avg_cost).quantize(AMOUNT_QUANTUM))
        staff_audit_record(actor=staff_user, action="ledger_adjustment", obj=entry, reason=reason, ip=ip, details={
            "client_id": user.pk, "account": str(kind), "asset": asset, "amount": str(amount),
            "unit_cost": None if unit_cost is None else str(unit_cost)})
    return entry


def adjustment_request_create(
    *,
    staff_user,
    user,
    kind: str,
    asset: str,
    amount: Decimal,
    reason: str,
    unit_cost: Decimal | None = None,
    ip: str | None = None,
) -> AdjustmentRequest:
    """Ask for a manual adjustment; nothing is posted until another member of staff approves it.

    Checked as `adjustment_post` will check it (reason, kind, amount; a debit the client cannot cover today is
    refused now), and checked again when approved.
    """
    reason = _reason(reason, required=True)
    amount = _adjustment_amount(kind=kind, amount=amount)
    if unit_cost is not None:
        unit_cost = _amount(unit_cost, what="unit_cost", positive=False)
    with transaction.atomic():
        if amount < 0:
            account = LedgerAccount.objects.filter(owner=user, kind=kind, asset=asset).first()
            balance = account.balance if account else ZERO
            if balance + amount < 0:
                raise InsufficientFunds(account_id=getattr(account, "pk", 0), kind=kind, asset=asset,
                                        available=balance, requested=-amount)
        request = AdjustmentRequest.objects.create(client=user, kind=kind, asset=asset, amount=amount,
                                                   unit_cost=unit_cost, reason=reason, requested_by=staff_user)
        staff_audit_record(actor=staff_user, action="adjustment_requested", obj=request, reason=reason, ip=ip,
                           details=_adjustment_details(request))
    return request


def adjustment_request_approve(*, request_id: int, staff_user, reason: str = "",
                               ip: str | None = None) -> AdjustmentRequest:
    """Post an adjustment request through `adjustment_post`, once: the request's row lock makes a concurrent second
    approval wait and then find it approved (InvalidState). The requester cannot approve (FourEyesRefused)."""
    reason = _reason(reason, required=False)
    with transaction.atomic():
        request = adjustment_request_lock(request_id)  # the request before the accounts it posts to
        _check_pending(request, AdjustmentRequest.Status.PENDING, f"Adjustment request #{request_id}")
        _check_four_eyes(decider=staff_user, requester_id=request.requested_by_id, what="An adjustment request")
        request.entry = adjustment_post(
            staff_user=staff_user, user=request.client, kind=request.kind, asset=request.asset,
            amount=request.amount, reason=request.reason, unit_cost=request.unit_cost, ip=ip,
            reference=request.reference)
        _adjustment_decided(request, status=AdjustmentRequest.Status.APPROVED, staff_user=staff_user, reason=reason,
                            ip=ip, action="adjustment_approved")
    return request


def adjustment_request_reject(*, request_id: int, staff_user, reason: str,
                              ip: str | None = None) -> AdjustmentRequest:
    """Refuse an adjustment request: nothing is posted."""
    reason = _reason(reason, required=True)
    with transaction.atomic():
        request = adjustment_request_lock(request_id)
        _check_pending(request, AdjustmentRequest.Status.PENDING, f"Adjustment request #{request_id}")
        _check_four_eyes(decider=staff_user, requester_id=request.requested_by_id, what="An adjustment request")
        _adjustment_decided(request, status=AdjustmentRequest.Status.REJECTED, staff_user=staff_user, reason=reason,
                            ip=ip, action="adjustment_rejected")
    return request


def _adjustment_details(request: AdjustmentRequest) -> dict:
    return {"client_id": request.client_id, "account": request.kind, "asset": request.asset,
            "amount": str(request.amount), "unit_cost": None if request.unit_cost is None else str(request.unit_cost),
            "requested_by": request.requested_by_id}


def _adjustment_decided(request: AdjustmentRequest, *, status: str, staff_user, reason: str, ip: str | None,
                        action: str) -> None:
    request.status = status
    request.decided_by = staff_user
    request.decided_at = timezone.now()
    request.decision_reason = reason
    request.save(update_fields=["status", "decided_by", "decided_at", "decision_reason", "entry"])
    staff_audit_record(actor=staff_user, action=action, obj=request, reason=reason, ip=ip,
                       details={**_adjustment_details(request), "entry_id": request.entry_id})
