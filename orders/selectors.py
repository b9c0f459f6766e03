"""Reads of the orders context: instruments (cached), orders for a user, and state rebuilt from the event log."""
import logging
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import QuerySet

from brokerx.faults import REDIS_FAULTS

from .models import LIVE_STATUSES, ORDER_API_FIELDS, ORDER_STATE_FIELDS, Instrument, Order, OrderEvent

logger = logging.getLogger(__name__)

_LOCAL_TTL = 1.0  # seconds an instrument stays in a process before it is re-read from Redis
_local: dict[str, tuple[float, dict | None]] = {}
INSTRUMENT_CACHE_KEY = "instrument:v1:{symbol}"


def _instrument_snapshot(instrument: Instrument) -> dict:
    return {field: getattr(instrument, field) for field in (
        "id", "symbol", "currency", "tick_size", "lot_size", "reference_price", "last_price", "price_band_pct",
        "max_order_notional", "max_order_qty", "trading_status", "is_tradable")}


def instrument_get(symbol: str) -> dict | None:
    """An instrument's trading parameters: from this process (<= 1 s old), else Redis, else Postgres (also when
    Redis is unavailable, ADR 009)."""
    symbol = symbol.upper()
    now = time.monotonic()
    hit = _local.get(symbol)
    if hit is not None and hit[0] > now:
        return hit[1]
    key = INSTRUMENT_CACHE_KEY.format(symbol=symbol)
    try:
        snapshot = cache.get(key)
    except REDIS_FAULTS:
        snapshot, key = None, None
    if snapshot is None:
        instrument = Instrument.objects.filter(symbol=symbol).first()
        snapshot = _instrument_snapshot(instrument) if instrument else {}
        if key is not None:
            try:
                cache.set(key, snapshot, timeout=300)
            except REDIS_FAULTS:
                pass
    value = snapshot or None
    _local[symbol] = (now + _LOCAL_TTL, value)
    return value


def instrument_cache_invalidate(symbol: str) -> None:
    """Called after commit by every write to an instrument (halt, resume, reference price)."""
    _local.pop(symbol.upper(), None)
    try:
        cache.delete(INSTRUMENT_CACHE_KEY.format(symbol=symbol.upper()))
    except REDIS_FAULTS:
        # A copy Redis keeps through the outage is served until it expires (300 s); matching reads the instrument
        # from Postgres and rejects orders for a halted symbol all the same (ADR 009).
        logger.warning("could not drop a cached instrument", extra={"symbol": symbol})


def orders_for_user(user, *, status: str | None = None, symbol: str | None = None, after=None, until=None,
                    updated_after=None) -> QuerySet[Order]:
    """The only way views read orders: always scoped to the user (no IDOR)."""
    qs = Order.objects.filter(user=user).order_by("-id")
    # A held leg is not in the book yet, but it is live (it can be canceled, it will trade): it is open, not closed.
    if status == "open":
        qs = qs.filter(status__in=LIVE_STATUSES)
    elif status == "closed":
        qs = qs.exclude(status__in=LIVE_STATUSES)
    elif status:
        qs = qs.filter(status=status)
    if symbol:
        qs = qs.filter(symbol=symbol.upper())
    if after:
        qs = qs.filter(created_at__gt=after)
    if until:
        qs = qs.filter(created_at__lte=until)
    if updated_after:
        qs = qs.filter(updated_at__gt=updated_after, updated_at__lt=changes_horizon()).order_by("updated_at", "id")
    return qs


# A change's updated_at is taken inside its transaction, before the commit: while a transaction runs, another may
# commit a later timestamp, and a client continuing from the newest updated_at it has seen would skip the first
# one for good. Listing changes only up to the start of the oldest running transaction (less a margin for the
# application's clock and the moment a timestamp is taken before its statement) closes that gap; a transaction
# stuck for longer than the cap does not hold the listing back.
CHANGES_MARGIN = timedelta(milliseconds=100)
CHANGES_MAX_LAG = timedelta(seconds=30)


def changes_horizon() -> datetime:
    """The newest updated_at a listing of changes may include so that no earlier change can commit later."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT clock_timestamp(), min(xact_start) FROM pg_stat_activity
             WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            """)
        now, oldest = cursor.fetchone()
    horizon = now if oldest is None else max(min(oldest, now), now - CHANGES_MAX_LAG)
    return horizon - CHANGES_MARGIN


def order_for_user(user, order_id) -> Order | None:
    return Order.objects.filter(user=user, pk=order_id).first()


def order_state_from_events(order_id: int) -> dict:
    """Replays the append-only event log; equals the order row's state if the log is complete."""
    state: dict = {}
    for event in OrderEvent.objects.filter(order_id=order_id).order_by("id"):
        for name in ORDER_STATE_FIELDS:
            if name in event.data:
                state[name] = event.data[name]
    return state


def decimal_or_none(value) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _as_text(value):
    return None if value is None else str(value)


def _as_time(value):
    return value.isoformat().replace("+00:00", "Z")


def _converters(names: tuple[str, ...]) -> tuple:
    """(name, conversion or None) per field, worked out once: decimals as strings (exact), times in ISO 8601 UTC."""
    by_type = {"DecimalField": _as_text, "DateTimeField": _as_time}
    return tuple((name, by_type.get(Order._meta.get_field(name).get_internal_type())) for name in names)


def _json_function(names: tuple[str, ...]):
    """order -> {name: JSON value} for the fields `names`, as one dict display built once from the field list.

    order_as_dict runs on every ACK and report and order_state on every order event: a generated
    `lambda o: {"id": o.id, "qty": _c6(o.qty), ...}` does the work of a loop over the fields in a fifth less time.
    The text is made of the model's own field names only.
    """
    converters = _converters(names)
    items = ", ".join(f"{name!r}: o.{name}" if convert is None else f"{name!r}: _c{i}(o.{name})"
                      for i, (name, convert) in enumerate(converters))
    scope = {f"_c{i}": convert for i, (_, convert) in enumerate(converters) if convert is not None}
    return eval(f"lambda o: {{{items}}}", scope)  # noqa: S307


order_as_dict = _json_function(ORDER_API_FIELDS)
order_as_dict.__doc__ = "The order as the API shows it (ORDER_API_FIELDS): OrderSerializer's output, without DRF."
order_state = _json_function(ORDER_STATE_FIELDS)
order_state.__doc__ = "The order's state as each of its events records it (ORDER_STATE_FIELDS): the log rebuilds it."
