"""The platform's invariants across every context, checked set-wise in SQL: what must hold after any test or crash.

Read-only: it reads every context's tables and changes nothing. `invariants_check()` returns the violations (empty
when everything holds); `manage.py check_invariants` prints them and exits non-zero; the trading tests' books
check runs it after every test that moves money. What each check means and which test proves it:
docs/reliability.md.

Run outside a transaction, every check reads one REPEATABLE READ snapshot, so a platform that is trading while it
runs is seen between its commits, never in the middle of one.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction

from portfolios.selectors import client_balances_negative, ledger_reconcile

# How long a due outbox event may stay pending before it counts as stuck (OUTBOX_PENDING_DEADLINE_SECONDS).
DEFAULT_OUTBOX_DEADLINE = timedelta(minutes=5)
# At most this many violations are listed per check (the first ones by id); the check still fails.
LIMIT = 100

OPEN = ["new", "partially_filled"]
TERMINAL = ["filled", "canceled", "expired", "rejected"]


@dataclass(frozen=True)
class Violation:
    """One thing that drifted: which check, what it is about (`subject`) and how it differs (`detail`)."""

    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Options:
    outbox_deadline: timedelta


def _rows(sql: str, **params) -> list[tuple]:
    """The rows of one check's query; %(limit)s, %(open)s and %(terminal)s are always bound."""
    with connection.cursor() as cursor:
        cursor.execute(sql, {"limit": LIMIT, "open": OPEN, "terminal": TERMINAL, **params})
        return cursor.fetchall()


def check_entries_balanced(options: Options) -> list[Violation]:
    """Every journal entry has postings and they sum to zero per asset."""
    rows = _rows("""
        SELECT p.entry_id, a.asset, sum(p.amount)
          FROM portfolios_posting AS p JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
         GROUP BY p.entry_id, a.asset HAVING sum(p.amount) <> 0
         ORDER BY p.entry_id LIMIT %(limit)s""")
    empty = _rows("""
        SELECT e.id FROM portfolios_journalentry AS e
         WHERE NOT EXISTS (SELECT 1 FROM portfolios_posting AS p WHERE p.entry_id = e.id)
         ORDER BY e.id LIMIT %(limit)s""")
    return ([Violation("entries_balanced", f"journal entry {entry} {asset}", f"postings sum to {total}")
             for entry, asset, total in rows]
            + [Violation("entries_balanced", f"journal entry {entry}", "has no postings") for (entry,) in empty])


def check_balances_match_postings(options: Options) -> list[Violation]:
    """Client balance rows equal the sum of their postings, positions equal their securities accounts
    (available + reserved), and no client balance is below zero (portfolios.selectors.ledger_reconcile)."""
    found = []
    for drift in ledger_reconcile()[:LIMIT]:
        if drift.check == "balance":
            subject = f"account {drift.account_id} (user {drift.owner_id} {drift.kind} {drift.asset})"
            detail = f"balance {drift.recorded} but postings sum to {drift.expected}"
        else:
            subject = f"position of user {drift.owner_id} in {drift.asset}"
            detail = f"qty {drift.recorded} but securities accounts hold {drift.expected}"
        found.append(Violation("balances_match_postings", subject, detail))
    found += [Violation("balances_match_postings", f"account {account} ({kind} {asset})", f"balance {value} < 0")
              for account, kind, asset, value in client_balances_negative()[:LIMIT]]
    return found


def check_reservations_match_holds(options: Options) -> list[Violation]:
    """Reserved cash of each user equals the `reserved_amount` of their open buys; reserved shares of each user
    and symbol equal that of their open sells; a closed order holds nothing."""
    currency = getattr(settings, "LEDGER_CURRENCY", "USD")
    rows = _rows("""
        WITH reserved AS (
            SELECT owner_id AS user_id, kind, asset, balance FROM portfolios_ledgeraccount
             WHERE owner_id IS NOT NULL AND kind IN ('cash_reserved', 'securities_reserved') AND balance <> 0),
        held AS (
            SELECT user_id, CASE WHEN side = 'buy' THEN 'cash_reserved' ELSE 'securities_reserved' END AS kind,
                   CASE WHEN side = 'buy' THEN %(currency)s ELSE symbol END AS asset, sum(reserved_amount) AS amount
              FROM orders_order WHERE status = ANY(%(open)s) GROUP BY 1, 2, 3)
        SELECT coalesce(r.user_id, h.user_id), coalesce(r.kind, h.kind), coalesce(r.asset, h.asset),
               coalesce(r.balance, 0), coalesce(h.amount, 0)
          FROM reserved AS r FULL JOIN held AS h
            ON h.user_id = r.user_id AND h.kind = r.kind AND h.asset = r.asset
         WHERE coalesce(r.balance, 0) <> coalesce(h.amount, 0)
         ORDER BY 1, 2, 3 LIMIT %(limit)s""", currency=currency)
    closed = _rows("""
        SELECT id, status, reserved_amount FROM orders_order
         WHERE status = ANY(%(terminal)s) AND reserved_amount <> 0 ORDER BY id LIMIT %(limit)s""")
    return ([Violation("reservations_match_holds", f"user {user} {kind} {asset}",
                       f"ledger holds {ledger} but open orders hold {held}")
             for user, kind, asset, ledger, held in rows]
            + [Violation("reservations_match_holds", f"order {order}", f"{status} but still holds {amount}")
               for order, status, amount in closed])


def check_withdrawal_holds(options: Options) -> list[Violation]:
    """Held cash of each user equals the amount of their withdrawals under review (four eyes, ADR 004): a decided
    withdrawal holds nothing, an approved one was paid out once, a rejected one released its hold exactly."""
    rows = _rows("""
        WITH held AS (
            SELECT owner_id AS user_id, asset, balance FROM portfolios_ledgeraccount
             WHERE owner_id IS NOT NULL AND kind = 'cash_held' AND balance <> 0),
        review AS (
            SELECT user_id, currency AS asset, sum(amount) AS amount FROM portfolios_withdrawal
             WHERE status = 'pending_review' GROUP BY 1, 2)
        SELECT coalesce(h.user_id, r.user_id), coalesce(h.asset, r.asset), coalesce(h.balance, 0),
               coalesce(r.amount, 0)
          FROM held AS h FULL JOIN review AS r ON r.user_id = h.user_id AND r.asset = h.asset
         WHERE coalesce(h.balance, 0) <> coalesce(r.amount, 0)
         ORDER BY 1, 2 LIMIT %(limit)s""")
    # Each decided withdrawal above the threshold has its hold and exactly one way out of it.
    decided = _rows("""
        SELECT w.id, w.status, count(*) FILTER (WHERE e.kind = 'withdrawal_hold'),
               count(*) FILTER (WHERE e.kind IN ('withdrawal', 'withdrawal_release'))
          FROM portfolios_withdrawal AS w
          JOIN portfolios_journalentry AS e ON e.reference = 'withdrawal:' || w.id
         WHERE w.reviewed_by_id IS NOT NULL
         GROUP BY w.id, w.status
        HAVING count(*) FILTER (WHERE e.kind = 'withdrawal_hold') <> 1
            OR count(*) FILTER (WHERE e.kind IN ('withdrawal', 'withdrawal_release')) <> 1
         ORDER BY w.id LIMIT %(limit)s""")
    return ([Violation("withdrawal_holds", f"user {user} cash_held {asset}",
                       f"ledger holds {ledger} but withdrawals under review hold {amount}")
             for user, asset, ledger, amount in rows]
            + [Violation("withdrawal_holds", f"withdrawal {withdrawal} ({status})",
                         f"{holds} hold entries and {outs} payout/release entries, expected 1 and 1")
               for withdrawal, status, holds, outs in decided])


def check_order_quantities(options: Options) -> list[Violation]:
    """cum_qty + leaves_qty = qty while open, leaves_qty = 0 once closed; the status agrees with the fills."""
    rows = _rows("""
        SELECT id, status, qty, cum_qty, leaves_qty,
               CASE WHEN status = ANY(%(open)s) AND cum_qty + leaves_qty <> qty THEN 'cum_qty + leaves_qty <> qty'
                    WHEN status = ANY(%(terminal)s) AND leaves_qty <> 0 THEN 'closed with leaves_qty <> 0'
                    WHEN status = 'filled' AND cum_qty <> qty THEN 'filled with cum_qty <> qty'
                    WHEN status = 'new' AND cum_qty <> 0 THEN 'new with cum_qty <> 0'
                    WHEN status = 'partially_filled' AND cum_qty = 0 THEN 'partially_filled with cum_qty = 0'
                    WHEN status = 'rejected' AND cum_qty <> 0 THEN 'rejected with cum_qty <> 0'
               END AS problem
          FROM orders_order
         WHERE (status = ANY(%(open)s) AND cum_qty + leaves_qty <> qty)
            OR (status = ANY(%(terminal)s) AND leaves_qty <> 0)
            OR (status = 'filled' AND cum_qty <> qty)
            OR (status = 'new' AND cum_qty <> 0)
            OR (status = 'partially_filled' AND cum_qty = 0)
            OR (status = 'rejected' AND cum_qty <> 0)
         ORDER BY id LIMIT %(limit)s""")
    return [Violation("order_quantities", f"order {order} ({status})",
                      f"{problem}: qty {qty}, cum_qty {cum}, leaves_qty {leaves}")
            for order, status, qty, cum, leaves, problem in rows]


def check_fills_complete(options: Options) -> list[Violation]:
    """Every trade has exactly one ledger entry (`trade:<id>`) with both securities legs and cash that only moves
    between the two traders and the fees account, an execution report for each side, and every order's cum_qty
    and fees are the sum of its trades (no fill lost, none applied twice)."""
    found = []
    legs = _rows("""
        WITH entries AS (
            SELECT substr(e.reference, 7)::bigint AS trade_id, count(*) AS n, min(e.id) AS entry_id
              FROM portfolios_journalentry AS e
             WHERE e.kind = 'trade' AND e.reference ~ '^trade:[0-9]+$'
             GROUP BY 1),
        fills AS (
            SELECT t.id, t.symbol, t.qty, t.buyer_fee, t.seller_fee, b.user_id AS buyer, s.user_id AS seller
              FROM matching_trade AS t
              JOIN orders_order AS b ON b.id = t.buy_order_id JOIN orders_order AS s ON s.id = t.sell_order_id),
        moved AS (
            SELECT f.id,
                   coalesce(sum(p.amount) FILTER (WHERE a.owner_id = f.buyer
                                                  AND a.kind IN ('securities_available', 'securities_reserved')
                                                  AND a.asset = f.symbol), 0) AS buyer_shares,
                   coalesce(sum(p.amount) FILTER (WHERE a.owner_id = f.seller AND a.kind = 'securities_reserved'
                                                  AND a.asset = f.symbol), 0) AS seller_shares,
                   coalesce(sum(p.amount) FILTER (WHERE a.owner_id IN (f.buyer, f.seller)
                                                  AND a.kind IN ('cash_available', 'cash_reserved')), 0) AS cash,
                   coalesce(sum(p.amount) FILTER (WHERE a.owner_id IS NULL AND a.kind = 'house_fees'), 0) AS fees,
                   count(p.id) AS postings
              FROM fills AS f JOIN entries AS e ON e.trade_id = f.id
              JOIN portfolios_posting AS p ON p.entry_id = e.entry_id
              JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
             GROUP BY f.id)
        SELECT f.id, e.n, f.qty, m.buyer_shares, m.seller_shares, m.cash, m.fees, f.buyer_fee + f.seller_fee
          FROM fills AS f LEFT JOIN entries AS e ON e.trade_id = f.id LEFT JOIN moved AS m ON m.id = f.id
         WHERE e.n IS DISTINCT FROM 1 OR m.buyer_shares <> f.qty OR m.seller_shares <> -f.qty
            OR m.cash <> -(f.buyer_fee + f.seller_fee) OR m.fees <> f.buyer_fee + f.seller_fee
         ORDER BY f.id LIMIT %(limit)s""")
    for trade, entries, qty, buyer_shares, seller_shares, cash, fees, fee_total in legs:
        if entries is None:
            detail = "no ledger entry (trade:<id>)"
        elif entries != 1:
            detail = f"{entries} ledger entries (applied more than once)"
        else:
            detail = (f"ledger legs wrong: buyer's shares {buyer_shares}, seller's reserved shares {seller_shares} "
                      f"for qty {qty}; traders' cash {cash}, fees {fees} for fees {fee_total}")
        found.append(Violation("fills_complete", f"trade {trade}", detail))
    orphans = _rows("""
        SELECT e.id, e.reference FROM portfolios_journalentry AS e
         WHERE e.kind = 'trade' AND NOT EXISTS (
               SELECT 1 FROM matching_trade AS t WHERE e.reference = 'trade:' || t.id)
         ORDER BY e.id LIMIT %(limit)s""")
    found += [Violation("fills_complete", f"journal entry {entry} ({reference})", "a trade entry without its trade")
              for entry, reference in orphans]
    reports = _rows("""
        SELECT t.id, o.id, o.side FROM matching_trade AS t
          JOIN orders_order AS o ON o.id IN (t.buy_order_id, t.sell_order_id)
         WHERE NOT EXISTS (SELECT 1 FROM notifications_executionreport AS r
                            WHERE r.trade_id = t.id AND r.order_id = o.id AND r.exec_type = 'trade')
         ORDER BY t.id, o.id LIMIT %(limit)s""")
    found += [Violation("fills_complete", f"trade {trade}", f"no execution report for the {side} order {order}")
              for trade, order, side in reports]
    sums = _rows("""
        WITH filled AS (
            SELECT order_id, sum(qty) AS qty, sum(fee) AS fees FROM (
                SELECT buy_order_id AS order_id, qty, buyer_fee AS fee FROM matching_trade
                UNION ALL
                SELECT sell_order_id, qty, seller_fee FROM matching_trade) AS legs
             GROUP BY order_id)
        SELECT o.id, o.cum_qty, coalesce(f.qty, 0), o.fees_paid, coalesce(f.fees, 0)
          FROM orders_order AS o LEFT JOIN filled AS f ON f.order_id = o.id
         WHERE (o.cum_qty <> 0 OR f.order_id IS NOT NULL)
           AND (o.cum_qty <> coalesce(f.qty, 0) OR o.fees_paid <> coalesce(f.fees, 0))
         ORDER BY o.id LIMIT %(limit)s""")
    found += [Violation("fills_complete", f"order {order}",
                        f"cum_qty {cum} / fees_paid {paid} but its trades sum to qty {qty} / fees {fees}")
              for order, cum, qty, paid, fees in sums]
    return found


def check_orders_resting_or_terminal(options: Options) -> list[Violation]:
    """Every accepted order is terminal, resting in the book (book_seq), or on its way there: its order.created
    (saga `created`) or, after a replace that lost its place, its order.replaced is still pending in the outbox."""
    rows = _rows("""
        SELECT o.id, o.status, o.saga_state FROM orders_order AS o
         WHERE o.status = ANY(%(open)s)
           AND NOT (o.saga_state = 'completed' AND o.book_seq IS NOT NULL)
           AND NOT (o.saga_state IN ('created', 'completed') AND EXISTS (
                    SELECT 1 FROM outbox_outboxevent AS e
                     WHERE e.topic = CASE WHEN o.saga_state = 'created' THEN 'order.created' ELSE 'order.replaced' END
                       AND e.aggregate_id = o.id::text AND e.aggregate_type = 'order' AND e.status = 'pending'))
         ORDER BY o.id LIMIT %(limit)s""")
    return [Violation("orders_resting_or_terminal", f"order {order} ({status}, saga {saga})",
                      "open but neither resting in the book nor waiting in the outbox for matching")
            for order, status, saga in rows]


# The saga state each status allows. `created`: accepted, matching has not taken it yet (still new, unfilled).
# `submitted` lives only inside a matching transaction. `completed`: the order reached the book, or was canceled
# or expired before matching took it (the close ends the saga, orders.services._close). `compensated`: matching
# could not put it in the book (halt, book refusal) and gave its reservation back.
SAGA_STATES_BY_STATUS = {
    "new": ("created", "completed"),
    "held": ("created",),
    "partially_filled": ("completed",),
    "filled": ("completed",),
    "canceled": ("completed", "compensated"),
    "expired": ("completed",),
    "rejected": ("compensated",),
}


def check_held_legs(options: Options) -> list[Violation]:
    """A held leg (quantity 0) waits for an entry that is open and has not filled yet: the entry's first fill makes
    it live, the entry's close without a fill cancels it (matching/engine/README.md, "Contingent orders")."""
    rows = _rows("""
        SELECT l.id, l.qty, p.id, p.status, p.cum_qty FROM orders_order AS l
          LEFT JOIN orders_order AS p ON p.id = l.parent_id
         WHERE l.status = 'held' AND (l.qty <> 0 OR p.id IS NULL OR p.status <> 'new' OR p.cum_qty <> 0)
         ORDER BY l.id LIMIT %(limit)s""")
    return [Violation("held_legs", f"held leg {leg}", f"qty {qty}, entry {parent} {status} with cum_qty {cum}")
            for leg, qty, parent, status, cum in rows]


def check_saga_matches_status(options: Options) -> list[Violation]:
    """Each order's saga state is one its status allows (SAGA_STATES_BY_STATUS)."""
    pairs = [(status, saga) for status, sagas in SAGA_STATES_BY_STATUS.items() for saga in sagas]
    rows = _rows("""
        SELECT o.id, o.status, o.saga_state FROM orders_order AS o
         WHERE NOT EXISTS (SELECT 1 FROM unnest(%(statuses)s::text[], %(sagas)s::text[]) AS a(status, saga)
                            WHERE a.status = o.status AND a.saga = o.saga_state)
         ORDER BY o.id LIMIT %(limit)s""", statuses=[p[0] for p in pairs], sagas=[p[1] for p in pairs])
    return [Violation("saga_matches_status", f"order {order}", f"status {status} with saga {saga}")
            for order, status, saga in rows]


def check_outbox_not_stale(options: Options) -> list[Violation]:
    """No outbox event is still pending longer than the deadline after it became due (`available_at`)."""
    rows = _rows("""
        SELECT id, topic, partition_key, available_at, attempts FROM outbox_outboxevent
         WHERE status = 'pending' AND available_at < now() - %(deadline)s
         ORDER BY id LIMIT %(limit)s""", deadline=options.outbox_deadline)
    return [Violation("outbox_not_stale", f"outbox event {event} ({topic} {partition})",
                      f"pending since {due.isoformat()} ({attempts} attempts), past the "
                      f"{options.outbox_deadline.total_seconds():.0f}s deadline")
            for event, topic, partition, due, attempts in rows]


CHECKS: dict[str, Callable[[Options], list[Violation]]] = {
    "entries_balanced": check_entries_balanced,
    "balances_match_postings": check_balances_match_postings,
    "reservations_match_holds": check_reservations_match_holds,
    "withdrawal_holds": check_withdrawal_holds,
    "order_quantities": check_order_quantities,
    "fills_complete": check_fills_complete,
    "orders_resting_or_terminal": check_orders_resting_or_terminal,
    "saga_matches_status": check_saga_matches_status,
    "held_legs": check_held_legs,
    "outbox_not_stale": check_outbox_not_stale,
}


def outbox_deadline_default() -> timedelta:
    seconds = getattr(settings, "OUTBOX_PENDING_DEADLINE_SECONDS", None)
    return timedelta(seconds=float(seconds)) if seconds is not None else DEFAULT_OUTBOX_DEADLINE


def invariants_check(*, only: Iterable[str] | None = None, outbox_deadline: timedelta | None = None) -> list[Violation]:
    """Run the checks (all, or those named in `only`) and return what drifted; empty when every invariant holds."""
    names = list(CHECKS) if only is None else list(only)
    unknown = set(names) - CHECKS.keys()
    if unknown:
        raise ValueError(f"unknown checks: {sorted(unknown)}")
    options = Options(outbox_deadline=outbox_deadline if outbox_deadline is not None else outbox_deadline_default())
    if connection.in_atomic_block:  # a caller's transaction (a test): its own view of the data
        return [v for name in names for v in CHECKS[name](options)]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return [v for name in names for v in CHECKS[name](options)]
