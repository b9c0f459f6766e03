"""Reads behind the Alpaca-compatible API, composed from the orders, portfolios and calendar contexts."""
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from orders.calendar import is_market_open, session_for
from orders.models import LIVE_STATUSES, TERMINAL_STATUSES, Instrument, Order
from orders.selectors import instrument_get, orders_for_user
from portfolios.selectors import portfolio_for_user

from . import ids

CLOCK_LOOKAHEAD_DAYS = 15


def instrument_prices(symbols: Iterable[str]) -> dict[str, Decimal]:
    """Mark prices for positions: the last trade, else the reference price (from the instrument cache)."""
    prices = {}
    for symbol in symbols:
        snapshot = instrument_get(symbol)
        if snapshot:
            prices[symbol] = snapshot["last_price"] or snapshot["reference_price"]
    return prices


def portfolio_for(user) -> dict:
    # A price source configured for the portfolios context wins; otherwise the instruments' own prices.
    lookup = None if getattr(settings, "PORTFOLIOS_PRICE_LOOKUP", "") else instrument_prices
    return portfolio_for_user(user, price_lookup=lookup)


def instrument_by_symbol_or_id(value: str) -> Instrument | None:
    """An asset path parameter is a symbol or an asset id (UUID) as /v2/assets shows it."""
    pk = ids.decode(ids.Kind.ASSET, value)
    if pk is not None:
        return Instrument.objects.filter(pk=pk).first()
    return Instrument.objects.filter(symbol=value.upper()).first()


def instruments(*, status: str | None = None) -> QuerySet[Instrument]:
    qs = Instrument.objects.order_by("symbol")
    if status == "active":
        qs = qs.filter(is_tradable=True)
    elif status == "inactive":
        qs = qs.filter(is_tradable=False)
    return qs


def instrument_ids(symbols: Iterable[str]) -> dict[str, int]:
    return dict(Instrument.objects.filter(symbol__in=set(symbols)).values_list("symbol", "id"))


# Alpaca's status groups: a held leg is open (it waits for its entry), as on Alpaca.
ORDER_STATUS_GROUPS = {"open": LIVE_STATUSES, "closed": TERMINAL_STATUSES}


def orders_query(user, *, status: str = "open", limit: int = 50, after: datetime | None = None,
                 until: datetime | None = None, direction: str = "desc", side: str | None = None,
                 symbols: list[str] | None = None, nested: bool = False) -> list[Order]:
    """GET /v2/orders: Alpaca's status groups (open, closed, all), newest first unless direction=asc.

    `nested`: the first orders of classes (and simple orders) with their legs prefetched, the legs not listed on
    their own; a class is listed when its first order or one of its legs is in the status group, so a bracket whose
    entry filled is an open order while its exits are.
    """
    qs = orders_for_user(user, after=after, until=until)
    statuses = ORDER_STATUS_GROUPS.get(status)
    if nested:
        qs = qs.filter(parent__isnull=True).prefetch_related(Prefetch("legs", queryset=Order.objects.order_by("id")))
        if statuses is not None:
            qs = qs.filter(Q(status__in=statuses)
                           | Exists(Order.objects.filter(parent=OuterRef("pk"), status__in=statuses)))
    elif statuses is not None:
        qs = qs.filter(status__in=statuses)
    if side:
        qs = qs.filter(side=side)
    if symbols:
        qs = qs.filter(symbol__in=[s.upper() for s in symbols])
    qs = qs.order_by("id" if direction == "asc" else "-id")
    return list(qs[:limit])


def order_by_uuid(user, value: str) -> Order | None:
    pk = ids.decode(ids.Kind.ORDER, value)
    return Order.objects.filter(user=user, pk=pk).first() if pk is not None else None


def order_by_client_order_id(user, client_order_id: str) -> Order | None:
    return Order.objects.filter(user=user, client_order_id=client_order_id).first()


def market_clock(now: datetime | None = None) -> dict:
    """Whether the market is open now, and the next open and close (looking two weeks ahead)."""
    now = now or timezone.now()
    next_open = next_close = None
    for offset in range(CLOCK_LOOKAHEAD_DAYS):
        session = session_for(now.date() + timedelta(days=offset))
        if session is None:
            continue
        opens_at, closes_at = session
        if next_open is None and opens_at > now:
            next_open = opens_at
        if next_close is None and closes_at > now:
            next_close = closes_at
        if next_open is not None and next_close is not None:
            break
    horizon = now + timedelta(days=CLOCK_LOOKAHEAD_DAYS)  # only when every day ahead is a holiday
    return {"now": now, "is_open": is_market_open(now), "next_open": next_open or horizon,
            "next_close": next_close or horizon}


def market_calendar(*, start: date, end: date) -> list[tuple[date, datetime, datetime]]:
    """(day, opens_at, closes_at) for each trading day from start to end inclusive; holidays are left out."""
    days = []
    day = start
    while day <= end:
        session = session_for(day)
        if session is not None:
            days.append((day, *session))
        day += timedelta(days=1)
    return days
