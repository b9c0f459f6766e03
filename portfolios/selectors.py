"""Reads of the portfolios context: balances, the portfolio with P&L, activities, reconciliation of the books."""
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils.module_loading import import_string

from .models import AMOUNT_QUANTUM, ZERO, Deposit, LedgerAccount, Position, Posting, Withdrawal

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
