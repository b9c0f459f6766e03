"""Batch settlement for the matching worker: every fill and release of a matching batch in a handful of statements.

Same ledger as `trade_settle` / `cash_release` / `shares_release` (one balanced journal entry per fill or
release, positions updated the same way), but written set-wise: accounts opened and looked up in one
statement each, all entries in one INSERT, all postings in one INSERT (Postgres's posting trigger locks the
client accounts in primary-key order and moves their balances; the deferred trigger checks each entry
balances at commit), positions locked and written back in one statement each. A batch's cost no longer grows
with round trips per fill.
"""
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal  # noqa: F401  (Decimal in annotations)

from django.db import connection
from django.utils import timezone

from brokerx.db import execute_bound, insert_rows

from .locks import positions_lock
from .models import AMOUNT_QUANTUM, ZERO, JournalEntry, LedgerAccount
from .services import COST_QUANTUM, house_account, ledger_currency, trade_notional

Kind = LedgerAccount.Kind


@dataclass(frozen=True)
class Fill:
    """One trade to settle: the buyer pays notional + buyer_fee (`from_reserved` of it from reserved cash).

    `to_reserved` of the shares go straight to the buyer's reserved shares: the exit legs of the buying order
    (a bracket's or an OTO's) grew by them and hold them from the start.
    """

    reference: str
    buyer_id: int
    seller_id: int
    qty: Decimal
    price: Decimal
    buyer_fee: Decimal
    seller_fee: Decimal
    from_reserved: Decimal
    to_reserved: Decimal = ZERO


@dataclass(frozen=True)
class Release:
    """Give back what a closed order still holds: reserved cash (asset = currency) or reserved shares."""

    reference: str
    user_id: int
    asset: str
    amount: Decimal
    cash: bool


def _key_arrays(keys) -> list[list]:
    """(owner, kind, asset) keys as three parallel arrays, in key order, for unnest()."""
    owners, kinds, assets = zip(*sorted(keys), strict=True)
    return [list(owners), list(kinds), list(assets)]


def _open_and_lookup(keys: set[tuple[int, str, str]]) -> dict[tuple[int, str, str], int]:
    """Account ids for (owner, kind, asset) keys, opening the missing accounts.

    Looked up first, and only the missing ones inserted: an INSERT ... ON CONFLICT over an existing account
    waits for any transaction updating that account's balance (a trader's order in flight) to end.
    """
    if not keys:
        return {}
    lookup = """
        SELECT a.id, a.owner_id, a.kind, a.asset FROM portfolios_ledgeraccount a
          JOIN unnest(%s::bigint[], %s::text[], %s::text[]) AS t(o, k, s)
            ON a.owner_id = t.o AND a.kind = t.k AND a.asset = t.s
        """
    with connection.cursor() as cursor:
        cursor.execute(lookup, _key_arrays(keys))
        found = {(owner, kind, asset): account_id for account_id, owner, kind, asset in cursor.fetchall()}
        missing = keys - found.keys()
        if missing:
            cursor.execute(
                """
                INSERT INTO portfolios_ledgeraccount (owner_id, kind, asset, balance, may_go_negative, created_at)
                SELECT o, k, a, 0, false, now() FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS t(o, k, a)
                ON CONFLICT DO NOTHING
                """, _key_arrays(missing))
            cursor.execute(lookup, _key_arrays(missing))
            found.update({(owner, kind, asset): account_id for account_id, owner, kind, asset in cursor.fetchall()})
        return found


def settle_batch(*, symbol: str, fills: list[Fill], releases: list[Release]) -> None:
    """Post one entry per fill and per release, and move the positions of the fills. Inside the caller's transaction."""
    if not fills and not releases:
        return
    currency = ledger_currency()
    fees_account = house_account(kind=Kind.HOUSE_FEES, asset=currency).pk if fills else None
    needed: set[tuple[int, str, str]] = set()
    for fill in fills:
        needed |= {(fill.buyer_id, Kind.CASH_AVAILABLE, currency), (fill.buyer_id, Kind.CASH_RESERVED, currency),
                   (fill.seller_id, Kind.CASH_AVAILABLE, currency),
                   (fill.seller_id, Kind.SECURITIES_RESERVED, symbol),
                   (fill.buyer_id, Kind.SECURITIES_AVAILABLE, symbol)}
        if fill.to_reserved:
            needed.add((fill.buyer_id, Kind.SECURITIES_RESERVED, symbol))
    for release in releases:
        available = Kind.CASH_AVAILABLE if release.cash else Kind.SECURITIES_AVAILABLE
        reserved = Kind.CASH_RESERVED if release.cash else Kind.SECURITIES_RESERVED
        needed |= {(release.user_id, available, release.asset), (release.user_id, reserved, release.asset)}
    account = _open_and_lookup(needed)

    entries: list[tuple[str, str, str, dict[int, Decimal]]] = []  # (kind, reference, memo, legs)
    for fill in fills:
        notional = trade_notional(qty=fill.qty, price=fill.price)
        legs: dict[int, Decimal] = defaultdict(Decimal)
        legs[account[(fill.buyer_id, Kind.CASH_RESERVED, currency)]] -= fill.from_reserved
        legs[account[(fill.buyer_id, Kind.CASH_AVAILABLE, currency)]] += fill.from_reserved - notional - fill.buyer_fee
        legs[account[(fill.seller_id, Kind.CASH_AVAILABLE, currency)]] += notional - fill.seller_fee
        legs[account[(fill.seller_id, Kind.SECURITIES_RESERVED, symbol)]] -= fill.qty
        legs[account[(fill.buyer_id, Kind.SECURITIES_AVAILABLE, symbol)]] += fill.qty - fill.to_reserved
        if fill.to_reserved:
            legs[account[(fill.buyer_id, Kind.SECURITIES_RESERVED, symbol)]] += fill.to_reserved
        legs[fees_account] += fill.buyer_fee + fill.seller_fee
        entries.append((JournalEntry.Kind.TRADE, fill.reference, f"{symbol} {fill.qty} @ {fill.price}", legs))
    for release in releases:
        available = Kind.CASH_AVAILABLE if release.cash else Kind.SECURITIES_AVAILABLE
        reserved = Kind.CASH_RESERVED if release.cash else Kind.SECURITIES_RESERVED
        legs = {account[(release.user_id, reserved, release.asset)]: -release.amount,
                account[(release.user_id, available, release.asset)]: release.amount}
        kind = JournalEntry.Kind.CASH_RELEASE if release.cash else JournalEntry.Kind.SHARES_RELEASE
        entries.append((kind, release.reference, "", legs))

    now = timezone.now()
    entry_ids = insert_rows("portfolios_journalentry",
                            {"kind": "text", "reference": "text", "memo": "text", "created_at": "timestamptz"},
                            [(kind, reference, memo, now) for kind, reference, memo, _ in entries], returning="id")
    # Postings grouped by entry: the deferred balanced-entry check then runs once per entry, not per posting.
    # (The posting trigger locks the client accounts in primary-key order itself.)
    rows = sorted((entry_id, account_id, amount)
                  for entry_id, (_, _, _, legs) in zip(entry_ids, entries, strict=True)
                  for account_id, amount in legs.items() if amount != 0)
    insert_rows("portfolios_posting", {"entry_id": "bigint", "account_id": "bigint", "amount": "numeric"}, rows)

    if fills:
        _positions_apply(symbol, fills, now)


def _positions_apply(symbol: str, fills: list[Fill], now) -> None:
    positions = positions_lock({f.buyer_id for f in fills} | {f.seller_id for f in fills}, symbol)
    for fill in fills:
        notional = trade_notional(qty=fill.qty, price=fill.price)
        buyer = positions[fill.buyer_id]
        new_qty = buyer.qty + fill.qty
        buyer.avg_cost = ((buyer.qty * buyer.avg_cost + notional + fill.buyer_fee) / new_qty).quantize(COST_QUANTUM)
        buyer.qty = new_qty
        seller = positions[fill.seller_id]
        proceeds = notional - fill.seller_fee
        seller.realized_pnl += (proceeds - fill.qty * seller.avg_cost).quantize(AMOUNT_QUANTUM,
                                                                             rounding=ROUND_HALF_EVEN)
        seller.qty -= fill.qty
        if seller.qty == 0:
            seller.avg_cost = ZERO
    changed = list(positions.values())
    execute_bound(
        """
        UPDATE portfolios_position AS p
           SET qty = v.q, avg_cost = v.c, realized_pnl = v.r, updated_at = %s
          FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[], %s::numeric[]) AS v(i, q, c, r)
         WHERE p.id = v.i
        """, [now, [p.pk for p in changed], [p.qty for p in changed], [p.avg_cost for p in changed],
              [p.realized_pnl for p in changed]])
