"""Reads of the portfolios context: balances, the portfolio with P&L, activities, reconciliation of the books."""
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.utils.module_loading import import_string

from .models import AMOUNT_QUANTUM, ZERO, Deposit, JournalEntry, LedgerAccount, Position, Posting, Withdrawal

Kind = LedgerAccount.Kind
PriceLookup = Callable[[Iterable[str]], dict[str, Decimal]]
CHANGE_QUANTUM = Decimal("0.0000000001")


def balances_for_user(user) -> dict:
    """The user's maintained balances: {"currency", "cash_available", "cash_reserved", "cash_pending", "cash_held",
    "securities": {symbol: {"available", "reserved"}}} (Decimal values; accounts not yet opened read as zero)."""
    currency = getattr(settings, "LEDGER_CURRENCY", "USD")
    result = {"currency": currency, "cash_available": ZERO, "cash_reserved": ZERO, "cash_pending": ZERO,
              "cash_held": ZERO, "securities": {}}
    for kind, asset, balance in LedgerAccount.objects.filter(owner=user).values_list("kind", "asset", "balance"):
        if kind in LedgerAccount.CLIENT_CASH_KINDS or kind == Kind.CASH_HELD:
            if asset == currency:
                result[kind] = balance
        elif kind in LedgerAccount.CLIENT_SECURITIES_KINDS:
            holding = result["securities"].setdefault(asset, {"available": ZERO, "reserved": ZERO})
            holding["available" if kind == Kind.SECURITIES_AVAILABLE else "reserved"] = balance
    return result


def instrument_prices(symbols: Iterable[str]) -> dict[str, Decimal]:
    """Last trade price, else reference price, of each symbol from the orders context's instruments.

    Read through the app registry so that portfolios does not import orders (which depends on portfolios).
    """
    try:
        instrument = apps.get_model("orders", "Instrument")
    except LookupError:
        return {}
    rows = instrument.objects.filter(symbol__in=list(symbols)).values_list("symbol", "last_price", "reference_price")
    return {symbol: last if last is not None else reference for symbol, last, reference in rows}


def instrument_previous_closes(symbols: Iterable[str]) -> dict[str, Decimal]:
    """Each symbol's price at the last session close (`Instrument.previous_close`), where one is recorded."""
    try:
        instrument = apps.get_model("orders", "Instrument")
    except LookupError:
        return {}
    rows = instrument.objects.filter(symbol__in=list(symbols), previous_close__isnull=False)
    return dict(rows.values_list("symbol", "previous_close"))


def _change(price: Decimal, lastday_price: Decimal | None) -> Decimal | None:
    """The change since the last close as a fraction (0.01 is +1%), as Alpaca's `change_today`."""
    if not lastday_price:
        return None
    return ((price - lastday_price) / lastday_price).quantize(CHANGE_QUANTUM, rounding=ROUND_HALF_EVEN)


def _default_price_lookup() -> PriceLookup:
    path = getattr(settings, "PORTFOLIOS_PRICE_LOOKUP", "")
    return import_string(path) if path else instrument_prices


def portfolio_for_user(
    user, prices: dict[str, Decimal] | None = None, *, price_lookup: PriceLookup | None = None
) -> dict:
    """Cash, reserved, pending, buying power, equity and positions with average cost, market value and P&L.

    Prices come from `prices`, else `price_lookup(symbols)` (default: settings.PORTFOLIOS_PRICE_LOOKUP, a
    dotted path, else `instrument_prices`: the instruments' last or reference price), else the average cost.
    Each position has `lastday_price` (the instrument's previous close, None until one is recorded) and
    `change_today` (the price's change since then, a fraction). Buying power is available cash only: reserved
    cash backs open orders, pending deposits are not settled and held cash waits for a withdrawal's review.
    Equity counts held cash: it is the client's until paid out.
    """
    balances = balances_for_user(user)
    positions = list(Position.objects.filter(user=user).order_by("symbol"))
    symbols = [p.symbol for p in positions if p.qty > 0]
    known = dict(prices or {})
    wanted = [s for s in symbols if s not in known]
    lookup = price_lookup or _default_price_lookup()
    if wanted and lookup is not None:
        known.update({s: Decimal(v) for s, v in (lookup(wanted) or {}).items() if v is not None})

    closes = instrument_previous_closes(symbols) if symbols else {}

    rows, market_value_total, realized_total, unrealized_total = [], ZERO, ZERO, ZERO
    for position in positions:
        holding = balances["securities"].get(position.symbol, {"available": ZERO, "reserved": ZERO})
        price = known.get(position.symbol)
        priced = price is not None
        price = price if priced else position.avg_cost
        market_value = _money(position.qty * price)
        cost_basis = _money(position.qty * position.avg_cost)
        unrealized = market_value - cost_basis
        rows.append({
            "symbol": position.symbol,
            "qty": position.qty,
            "qty_available": holding["available"],
            "qty_reserved": holding["reserved"],
            "avg_cost": position.avg_cost,
            "cost_basis": cost_basis,
            "market_price": price,
            "market_price_source": "market" if priced else "avg_cost",
            "market_value": market_value,
            "unrealized_pnl": unrealized,
            "realized_pnl": position.realized_pnl,
            "lastday_price": closes.get(position.symbol),
            "change_today": _change(price, closes.get(position.symbol)),
        })
        market_value_total += market_value
        unrealized_total += unrealized
        realized_total += position.realized_pnl

    cash = balances["cash_available"]
    reserved = balances["cash_reserved"]
    return {
        "currency": balances["currency"],
        "cash": cash,
        "cash_reserved": reserved,
        "cash_pending": balances["cash_pending"],
        "cash_held": balances["cash_held"],
        "buying_power": cash,
        "market_value": market_value_total,
        "equity": cash + reserved + balances["cash_held"] + market_value_total,
        "unrealized_pnl": unrealized_total,
        "realized_pnl": realized_total,
        "positions": rows,
    }


def _money(value: Decimal) -> Decimal:
    return value.quantize(AMOUNT_QUANTUM, rounding=ROUND_HALF_EVEN)


def activities_for_user(
    user, *, types: list[str] | None = None, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> QuerySet[Posting]:
    """The user's ledger history, newest first: one row per posting, with its entry."""
    query = Posting.objects.filter(account__owner=user).select_related("entry", "account").order_by("-id")
    if types:
        query = query.filter(entry__kind__in=types)
    if since:
        query = query.filter(entry__created_at__gte=since)
    if until:
        query = query.filter(entry__created_at__lt=until)
    return query


# Cash the client owns outright: pending deposits are not yet theirs (equity leaves them out too).
OWNED_CASH_KINDS = (Kind.CASH_AVAILABLE, Kind.CASH_RESERVED, Kind.CASH_HELD)


def ledger_movements_for_user(
    user, *, kinds: Iterable[str], after: tuple[dt.datetime, int] | None = None, ascending: bool = False,
    since: dt.datetime | None = None, until: dt.datetime | None = None, limit: int = 100,
) -> list[dict]:
    """The user's journal entries of `kinds`, in (created_at, id) order, each with what it moved for the user:
    {"entry_id", "kind", "created_at", "memo", "cash" (net on owned cash), "securities" ({symbol: qty})}.

    `after` is the (created_at, id) of the last entry already seen, in the direction of `ascending`: a keyset
    cursor, so pages neither skip nor repeat entries however many share a timestamp. Two queries.
    """
    query = JournalEntry.objects.filter(kind__in=list(kinds), postings__account__owner=user).distinct()
    if since:
        query = query.filter(created_at__gte=since)
    if until:
        query = query.filter(created_at__lt=until)
    if after is not None:
        moment, entry_id = after
        if ascending:
            query = query.filter(Q(created_at__gt=moment) | Q(created_at=moment, id__gt=entry_id))
        else:
            query = query.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=entry_id))
    order = ("created_at", "id") if ascending else ("-created_at", "-id")
    entries = list(query.order_by(*order).values("id", "kind", "created_at", "memo")[:limit])
    moved: dict[int, dict] = {e["id"]: {"cash": ZERO, "securities": {}} for e in entries}
    legs = (Posting.objects.filter(entry_id__in=list(moved), account__owner=user)
            .values_list("entry_id", "account__kind", "account__asset", "amount"))
    for entry_id, kind, asset, amount in legs:
        if kind in OWNED_CASH_KINDS:
            moved[entry_id]["cash"] += amount
        elif kind in LedgerAccount.CLIENT_SECURITIES_KINDS:
            holdings = moved[entry_id]["securities"]
            holdings[asset] = holdings.get(asset, ZERO) + amount
    return [{"entry_id": e["id"], "kind": e["kind"], "created_at": e["created_at"], "memo": e["memo"],
             **moved[e["id"]]} for e in entries]


def ledger_history_for_user(user, *, start: dt.datetime, end: dt.datetime) -> tuple[dict, list[tuple]]:
    """What the user owned at `start` and every change until `end`, for valuing the account over time:
    ({(account kind, asset): balance at start}, [(created_at, entry kind, account kind, asset, amount), ...] in
    posting order). Client accounts only; two queries."""
    mine = Posting.objects.filter(account__owner=user)
    opening = {(kind, asset): total for kind, asset, total in
               mine.filter(entry__created_at__lte=start).values_list("account__kind", "account__asset")
               .annotate(total=Sum("amount")).values_list("account__kind", "account__asset", "total")}
    changes = list(mine.filter(entry__created_at__gt=start, entry__created_at__lte=end)
                   .order_by("entry__created_at", "id")
                   .values_list("entry__created_at", "entry__kind", "account__kind", "account__asset", "amount"))
    return opening, changes


def deposits_for_user(user) -> QuerySet[Deposit]:
    return Deposit.objects.filter(user=user).order_by("-created_at", "-id")


def withdrawals_for_user(user) -> QuerySet[Withdrawal]:
    return Withdrawal.objects.filter(user=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class Drift:
    """A disagreement found by ledger_reconcile: `recorded` is what the row says, `expected` what the postings say."""

    check: str  # "balance" (account row vs its postings) or "position" (position qty vs securities accounts)
    account_id: int | None
    owner_id: int | None
    kind: str
    asset: str
    recorded: Decimal
    expected: Decimal

    @property
    def difference(self) -> Decimal:
        return self.recorded - self.expected

    def as_dict(self) -> dict:
        return {**asdict(self), "difference": self.difference}


def ledger_reconcile() -> list[Drift]:
    """Every client balance row that differs from the sum of its postings, and every position whose qty
    differs from its securities accounts (available + reserved). Empty when the books agree."""
    drifts: list[Drift] = []
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.id, a.owner_id, a.kind, a.asset, a.balance, COALESCE(s.total, 0)
              FROM portfolios_ledgeraccount AS a
              LEFT JOIN (SELECT account_id, sum(amount) AS total FROM portfolios_posting GROUP BY account_id) AS s
                ON s.account_id = a.id
             WHERE a.owner_id IS NOT NULL AND a.balance IS DISTINCT FROM COALESCE(s.total, 0)
             ORDER BY a.id
        """)
        drifts += [Drift("balance", *row) for row in cursor.fetchall()]
        cursor.execute("""
            SELECT p.user_id, p.symbol, p.qty, COALESCE(sum(a.balance), 0)
              FROM portfolios_position AS p
              LEFT JOIN portfolios_ledgeraccount AS a
                ON a.owner_id = p.user_id AND a.asset = p.symbol
               AND a.kind IN ('securities_available', 'securities_reserved')
             GROUP BY p.id, p.user_id, p.symbol, p.qty
            HAVING p.qty <> COALESCE(sum(a.balance), 0)
            UNION ALL
            SELECT a.owner_id, a.asset, 0, sum(a.balance)
              FROM portfolios_ledgeraccount AS a
             WHERE a.kind IN ('securities_available', 'securities_reserved') AND a.owner_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM portfolios_position AS p
                                WHERE p.user_id = a.owner_id AND p.symbol = a.asset)
             GROUP BY a.owner_id, a.asset
            HAVING sum(a.balance) <> 0
        """)
        drifts += [Drift("position", None, user_id, "position", symbol, qty, ledger)
                   for user_id, symbol, qty, ledger in cursor.fetchall()]
    return drifts


def books_balance() -> dict[str, Decimal]:
    """The sum of all postings per asset; every value is zero when the books balance."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.asset, sum(p.amount)
              FROM portfolios_posting AS p JOIN portfolios_ledgeraccount AS a ON a.id = p.account_id
             GROUP BY a.asset ORDER BY a.asset
        """)
        return dict(cursor.fetchall())


def house_balances() -> list[dict]:
    """House accounts with their balances, summed from the postings (their rows keep no balance)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT a.id, a.kind, a.asset, COALESCE(sum(p.amount), 0)
              FROM portfolios_ledgeraccount AS a LEFT JOIN portfolios_posting AS p ON p.account_id = a.id
             WHERE a.owner_id IS NULL
             GROUP BY a.id ORDER BY a.kind, a.asset
        """)
        return [{"id": i, "kind": k, "asset": s, "balance": b} for i, k, s, b in cursor.fetchall()]


def client_balances_negative() -> list[tuple[int, str, str, Decimal]]:
    """Client accounts below zero (the CHECK constraint makes this empty; kept for the books check)."""
    return list(LedgerAccount.objects.filter(owner__isnull=False, balance__lt=0)
                .values_list("id", "kind", "asset", "balance"))
